// Command small is the `small` workload: a stdlib program with one dependency module
// (gcm.example/greet, which itself needs gcm.example/words) served by the offline file proxy.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"gcm.example/greet"
	"gcm.example/small/internal/report"
)

func main() {
	r := report.New("small", greet.Hello("cache"))
	out, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

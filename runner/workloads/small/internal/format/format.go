// Package format is the leaf package the cold-warm scenario edits.
package format

import "strings"

func Title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

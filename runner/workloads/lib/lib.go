// Package lib is the `lib` workload: the cheapest build that still goes through everything a
// behavioural question looks at. It imports one module from the offline proxy (so GOMODCACHE is
// filled and read) and nothing from the standard library, so a cold build compiles two packages
// (gcm.example/words and this one) and never the runtime, yet initialises GOCACHE, writes entries,
// trims and hits exactly as a program's build does.
package lib

import "gcm.example/words"

// Line is all the package does.
func Line(who string) string { return words.Greeting() + ", " + who }

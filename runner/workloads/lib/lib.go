// Package lib is the `lib` workload: the cheapest build that still goes through everything a
// behavioural question looks at. It imports one module from the offline proxy (so GOMODCACHE is
// filled and read), one package of its own that a scenario may edit (internal/format, like the
// `small` program's), and nothing from the standard library: a cold build compiles three packages
// and never the runtime, yet initialises GOCACHE, writes entries, trims and hits as a program's
// build does. It has no link step (a program's warm build still reads its dependencies' archives):
// runner.parity checks, per scenario, that this changes no answer.
package lib

import (
	"gcm.example/lib/internal/format"
	"gcm.example/words"
)

// Line is all the package does.
func Line(who string) string { return format.Join(words.Greeting(), who) }

// Package selinux is what the `selinux` scenario builds in the guest: one package that imports nothing, so a
// cold build compiles exactly one package (a program would compile the runtime too: minutes under TCG). Go
// initialises, fills and reuses GOCACHE for it exactly as for a program, and that is what the scenario
// watches SELinux allow or deny.
package selinux

// Sum is something to compile.
func Sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

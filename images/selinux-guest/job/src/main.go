// Command selinux is the `selinux` scenario's workload in the guest: the smallest program Go builds (the
// runtime and its internal packages, about 15 packages), so a cold build under TCG stays short. What the
// scenario measures is whether Go may write and reuse its cache on the mount, not how long a build takes.
package main

func main() {}

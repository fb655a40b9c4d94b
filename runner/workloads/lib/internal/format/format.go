// Package format is the leaf package of the `lib` workload that scenarios edit by one line: the edit
// must recompile it and lib, which depends on it, and not gcm.example/words.
package format

// Join puts a greeting and a name together.
func Join(greeting, who string) string { return greeting + ", " + who }

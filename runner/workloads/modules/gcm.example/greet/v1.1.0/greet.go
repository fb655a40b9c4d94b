// Package greet is served by the offline module proxy; v1.1.0 adds a transitive dependency.
package greet

import "gcm.example/words"

func Hello(who string) string { return words.Greeting() + ", " + who }

// Package greet is served by the offline module proxy (two versions exist).
package greet

func Hello(who string) string { return "hello, " + who }

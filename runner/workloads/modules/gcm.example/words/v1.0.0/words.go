// Package words is a transitive dependency of gcm.example/greet v1.1.0.
package words

func Greeting() string { return "hello" }

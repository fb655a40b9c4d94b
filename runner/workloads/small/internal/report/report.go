// Package report sits between main and the leaf package format, so a one-byte change in format
// shows which dependents Go recompiles.
package report

import "gcm.example/small/internal/format"

type Report struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func New(name, message string) Report {
	return Report{Name: format.Title(name), Message: message}
}

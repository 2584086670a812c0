//go:build race

package main

// raceBuild: the test binary runs with the race detector, so the sekisho
// binary the tests build uses it too and shares the compiled packages.
const raceBuild = true

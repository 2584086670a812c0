//go:build race

package conformance

// raceBuild: the test binary runs under the race detector, so the gateway
// binary is built with it too.
const raceBuild = true

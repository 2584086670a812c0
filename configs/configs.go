// Package configs holds the example configurations; the quickstart is
// embedded in the binary and used when `sekisho serve` gets no -c.
package configs

import _ "embed"

// Quickstart is configs/quickstart.yaml.
//
//go:embed quickstart.yaml
var Quickstart []byte

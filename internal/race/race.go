//go:build race

// Package race tells whether the binary was built with the race detector,
// for tests whose cost it multiplies (the simulated cluster's fault
// matrix, node's tests that move megabytes).
package race

// Enabled is true under the race detector.
const Enabled = true

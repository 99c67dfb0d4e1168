//go:build race

package sim_test

// raceEnabled: this test binary runs under the race detector, which makes
// the fault matrix about ten times slower; see TestFaultMatrix.
const raceEnabled = true

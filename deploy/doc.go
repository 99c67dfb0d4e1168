// Package deploy holds material for running Meridian outside the binary
// itself — scripts, configurations and their READMEs, one directory each —
// and the Go tests, if any, that check it. It contains no code the binary
// links; each directory's README (for systemd, the unit file's opening
// comment) says what it holds and how to use it.
package deploy

//go:build !crashpoints

package crashpoint

// Enabled reports whether this build can crash at a crash point.
const Enabled = false

// Hit does nothing: release builds have no crash points.
func Hit(string) {}

package doctor

// KldstatArgv asks FreeBSD's kernel whether module is present: kldstat(8)
// -q exits 0 if it is, 1 if not, and prints nothing. Kept on every OS so
// that the argv is tested everywhere.
func KldstatArgv(module string) []string { return []string{"kldstat", "-q", "-m", module} }

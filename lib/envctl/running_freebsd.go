package envctl

// defaultRunningCheck asks the kernel: jls for jails, the vmm device that
// bhyve creates for every VM it runs.
func defaultRunningCheck(kind string) []string {
	if kind == VM {
		return []string{"exists:/dev/vmm/%j"}
	}
	return []string{"jls", "-j", "%j", "jid"}
}

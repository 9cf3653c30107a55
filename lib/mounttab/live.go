package mounttab

import "sync"

// Live is the mount table of a process that asks about it and changes it
// many times, as envctl does when it moves a thousand environments. With
// thousands of mounts the kernel spends milliseconds formatting
// /proc/self/mountinfo for every read, so Live reads it only when it must:
//
//   - it asks the kernel whether the table changed at all since the last
//     read (on Linux, mountinfo polls as changed after any mount, unmount,
//     move or remount in the namespace), and
//   - for the mounts and unmounts made through Change it checks that the
//     kernel's list of mount IDs moved by exactly that one mount (Linux 6.8+
//     listmount(2)) and applies the change to its copy instead of reading
//     the whole table again.
//
// Anything it cannot account for makes the next Table read the table again,
// so a Table is never staler than a fresh read made at the same moment
// would be, except for a move or remount made by another process during
// one of Change's own system calls (microseconds), which no read-then-mount
// tool can rule out either. Where the kernel offers neither (FreeBSD, whose
// getfsstat is cheap anyway; old Linux), Live reads the table every time.
//
// Tables returned by Live are shared: callers must not modify them in place
// (WithBind and WithoutTop return new tables).
type Live struct {
	mu    sync.Mutex
	table Table
	valid bool
	reads int
	w     watcher
}

// NewLive returns a Live table; it reads nothing until asked.
func NewLive() *Live { return &Live{w: newWatcher()} }

// Table returns the current mount table.
func (l *Live) Table() (Table, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.valid && !l.w.changed() {
		return l.table, nil
	}
	l.valid = false
	// Whatever changes after this point shows as a change next time.
	l.w.changed()
	l.reads++
	t, err := read()
	if err != nil {
		return nil, err
	}
	l.table, l.valid = t, l.w.snapshot()
	return t, nil
}

// Change runs op, one mount (added 1) or one unmount (removed 1) made by
// this process, and keeps the table current with apply when the kernel shows
// that change and no other. Concurrent Changes run one at a time; the kernel
// serialises mount table changes anyway.
func (l *Live) Change(op func() error, added, removed int, apply func(Table) Table) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fresh := l.valid && !l.w.changed()
	err := op()
	l.valid = false
	if err != nil || !fresh {
		return err
	}
	l.w.changed() // op's own change
	if !l.w.advance(added, removed) {
		return nil
	}
	if t := apply(l.table); t != nil {
		l.table, l.valid = t, true
	}
	return nil
}

// Reads says how many times Live has read the whole table.
func (l *Live) Reads() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// Close releases what Live holds open.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.close()
	l.valid = false
}

// WithoutTop returns the table as it is after unmounting the top mount at
// target, or t itself when nothing is mounted there.
func (t Table) WithoutTop(target string) Table {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].Target == target {
			return append(t[:i:i], t[i+1:]...)
		}
	}
	return t
}

// Package inplace decides whether an environment's storage is all in
// place, so that a start has nothing to do. It is the one answer to that
// question: the full start (lib/plan) asks it with the plan's steps and the
// state record, and mnt-start's quick check (lib/quick) with the note that
// stands for both. It imports nothing, so mnt-start stays small.
package inplace

// Need is one thing a plan leaves attached.
type Need struct {
	// ID is the state record's name for it (the ID of its undo action);
	// "" when nothing would undo it, such as an exec hook without a stop.
	ID string
	// Shows reports whether its effect is there now; an error is doubt.
	Shows func() (bool, error)
}

// Decide reports whether everything is in place: the plan leaves at least
// one thing attached, the state record names every one of them as done
// (not merely intended by a run that may have died), and each shows now.
// Any doubt is "no": the caller then takes the full path, which finds out.
func Decide(needs []Need, recordedDone func(id string) bool) bool {
	if len(needs) == 0 {
		return false
	}
	for _, n := range needs {
		if n.ID == "" || !recordedDone(n.ID) {
			return false
		}
		if shows, err := n.Shows(); err != nil || !shows {
			return false
		}
	}
	return true
}

package lease

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/record"
)

// Codec is the kind of every driver's lease records: a lease (file
// <jname>.lease, NFS <jname>.lease/owner, the value of etcd's
// <prefix>/<jname> key) and the last generation handed out (<jname>.gen).
// Records written before they were JSON (node=, since= and generation=
// lines, or a bare generation number) and etcd values written before they
// named their format are read too, so leases taken before an upgrade stay
// held.
var Codec = record.Kind{Format: "envhooks-lease 2", What: "lease record", Max: 64 << 10, Legacy: legacyLease, Unversioned: true}

// formatRecord is the record of a lease, or of a generation alone.
func formatRecord(l *Lease) []byte {
	raw, err := Codec.Encode(l)
	if err != nil {
		panic(err) // a Lease always encodes
	}
	return raw
}

// parseRecord reads a lease record of jname; the error says what is
// damaged, without the path (callers name it, see Codec.Damaged).
func parseRecord(raw []byte, jname string) (*Lease, error) {
	var l Lease
	if err := Codec.Decode(raw, &l); err != nil {
		return nil, err
	}
	if l.JName == "" {
		l.JName = jname
	}
	if l.JName != jname {
		return nil, fmt.Errorf("it is the lease of %.64q, not of %q", l.JName, jname)
	}
	return &l, nil
}

func legacyLease(raw []byte, v any) error {
	l := v.(*Lease)
	text := strings.TrimSpace(string(raw))
	if gen, err := strconv.ParseUint(text, 10, 64); err == nil {
		l.Generation = gen // a generation file
		return nil
	}
	for n, line := range strings.Split(text, "\n") {
		k, val, ok := strings.Cut(line, "=")
		var err error
		switch {
		case !ok:
			err = errors.New("not a key=value line")
		case k == "node":
			l.Node = val
		case k == "since":
			l.Since, err = time.Parse(time.RFC3339, val)
		case k == "generation":
			l.Generation, err = strconv.ParseUint(val, 10, 64)
		}
		if err != nil {
			return fmt.Errorf("line %d: %v", n+1, err)
		}
	}
	return nil
}

// beatCodec is the kind of a file or NFS heartbeat record: the writer's
// clock, which readers compare with their own (keep the nodes' clocks in
// sync, to well within the TTL). The etcd driver keeps the same record as
// the value of a node's last-seen key. The beat=<nanoseconds> line written
// before records were JSON, and the bare RFC 3339 time etcd's keys held, are
// read too.
var beatCodec = record.Kind{Format: "envhooks-heartbeat 2", What: "heartbeat record", Max: 4 << 10, Legacy: legacyBeat}

type beat struct {
	Beat time.Time `json:"beat"`
}

// BeatRecord is the record of a heartbeat at now.
func BeatRecord(now time.Time) []byte {
	raw, err := beatCodec.Encode(beat{Beat: now.UTC()})
	if err != nil {
		panic(err) // a time always encodes
	}
	return raw
}

// ParseBeat reads a heartbeat record; false when it is not one (a record
// half written over NFS).
func ParseBeat(raw []byte) (time.Time, bool) {
	var b beat
	if err := beatCodec.Decode(raw, &b); err != nil || b.Beat.IsZero() {
		return time.Time{}, false
	}
	return b.Beat, true
}

func legacyBeat(raw []byte, v any) error {
	text, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "beat=")
	if !ok {
		t, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return errors.New("neither a beat= line nor a time")
		}
		v.(*beat).Beat = t
		return nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return err
	}
	v.(*beat).Beat = time.Unix(0, n)
	return nil
}

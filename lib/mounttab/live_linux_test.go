package mounttab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const privateNSMarker = "ENVHOOKS_MOUNTTAB_PRIVATE_NS"

// inPrivateNamespace reports whether the test runs in a private mount
// namespace of its own. When it does not, it runs the test again in one
// (as root, under unshare(1)), passes or fails with that run, and returns
// false: the caller returns at once.
func inPrivateNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv(privateNSMarker) == "1" {
		return true
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test makes real bind mounts and needs root under CI=true")
		}
		t.Skip("needs root for real bind mounts")
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), privateNSMarker+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private mount namespace: %v\n%s", err, out)
	}
	return false
}

// comparable is what the engine decides on; the options of a fresh bind
// mount may be reported differently from its holder's.
func comparable(t Table) []string {
	var out []string
	for _, m := range t {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", m.Target, m.Source, m.FSType, m.Dev, m.Root))
	}
	sort.Strings(out)
	return out
}

func assertCurrent(t *testing.T, l *Live) {
	t.Helper()
	got, err := l.Table()
	require.NoError(t, err)
	fresh, err := Read()
	require.NoError(t, err)
	assert.Equal(t, comparable(fresh), comparable(got), "Live's table is the kernel's")
}

type bindFixture struct{ dir string }

func newBindFixture(t *testing.T, n int) bindFixture {
	dir := t.TempDir()
	t.Cleanup(func() { // before TempDir's own cleanup
		tab, _ := Read()
		under := tab.Under(dir)
		for i := len(under) - 1; i >= 0; i-- {
			unix.Unmount(under[i].Target, unix.MNT_DETACH)
		}
	})
	for i := 0; i < n; i++ {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "src", fmt.Sprint(i)), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "dst", fmt.Sprint(i)), 0o755))
	}
	return bindFixture{dir}
}

func (f bindFixture) src(i int) string { return filepath.Join(f.dir, "src", fmt.Sprint(i)) }
func (f bindFixture) dst(i int) string { return filepath.Join(f.dir, "dst", fmt.Sprint(i)) }

func (f bindFixture) bind(l *Live, i int) error {
	return l.Change(func() error { return unix.Mount(f.src(i), f.dst(i), "", unix.MS_BIND, "") }, 1, 0,
		func(t Table) Table { return t.WithBind(f.src(i), f.dst(i)) })
}

func (f bindFixture) unbind(l *Live, i int) error {
	return l.Change(func() error { return unix.Unmount(f.dst(i), 0) }, 0, 1,
		func(t Table) Table { return t.WithoutTop(f.dst(i)) })
}

// The point of Live: its own mounts and unmounts cost no read of the table.
func TestLiveFollowsItsOwnChangesWithoutReading(t *testing.T) {
	if !inPrivateNamespace(t) {
		return
	}
	f := newBindFixture(t, 10)
	l := NewLive()
	defer l.Close()
	assertCurrent(t, l)
	require.Equal(t, 1, l.Reads())
	for i := 0; i < 10; i++ {
		require.NoError(t, f.bind(l, i))
	}
	for i := 0; i < 10; i += 2 {
		require.NoError(t, f.unbind(l, i))
	}
	tab, err := l.Table()
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		top, ok := tab.Top(f.dst(i))
		assert.Equal(t, i%2 == 1, ok, "mounted on %s", f.dst(i))
		if ok {
			assert.True(t, tab.ShowsDir(top, f.src(i)))
		}
	}
	if _, err := listMountIDs(); err == nil {
		assert.Equal(t, 1, l.Reads(), "15 changes of its own, no read")
	} else {
		t.Logf("no listmount(2) here (%v): every change of its own costs a read", err)
		assert.Equal(t, 16, l.Reads())
	}
	assertCurrent(t, l)
}

// Changes Live did not make are seen, whatever they are: a mount, a
// remount, a move, an unmount.
func TestLiveSeesChangesItDidNotMake(t *testing.T) {
	if !inPrivateNamespace(t) {
		return
	}
	f := newBindFixture(t, 3)
	l := NewLive()
	defer l.Close()
	assertCurrent(t, l)
	reads := l.Reads()
	_, err := l.Table()
	require.NoError(t, err)
	assert.Equal(t, reads, l.Reads(), "nothing changed, nothing read")

	require.NoError(t, unix.Mount(f.src(0), f.dst(0), "", unix.MS_BIND, ""))
	assertCurrent(t, l)

	require.NoError(t, unix.Mount("", f.dst(0), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))
	tab, err := l.Table()
	require.NoError(t, err)
	top, _ := tab.Top(f.dst(0))
	assert.Contains(t, top.Options, "ro", "the remount is seen")

	require.NoError(t, unix.Mount(f.dst(0), f.dst(1), "", unix.MS_MOVE, ""))
	tab, err = l.Table()
	require.NoError(t, err)
	_, still := tab.Top(f.dst(0))
	_, moved := tab.Top(f.dst(1))
	assert.False(t, still, "the move is seen")
	assert.True(t, moved)

	require.NoError(t, unix.Unmount(f.dst(1), 0))
	assertCurrent(t, l)
}

// Another change during one of Live's own makes it read the table again
// rather than trust its bookkeeping.
func TestLiveRereadsWhenAnotherChangeLandsDuringItsOwn(t *testing.T) {
	if !inPrivateNamespace(t) {
		return
	}
	f := newBindFixture(t, 2)
	l := NewLive()
	defer l.Close()
	assertCurrent(t, l)
	require.NoError(t, l.Change(func() error {
		if err := unix.Mount(f.src(0), f.dst(0), "", unix.MS_BIND, ""); err != nil {
			return err
		}
		return unix.Mount(f.src(1), f.dst(1), "", unix.MS_BIND, "") // "someone else's"
	}, 1, 0, func(t Table) Table { return t.WithBind(f.src(0), f.dst(0)) }))
	tab, err := l.Table()
	require.NoError(t, err)
	_, other := tab.Top(f.dst(1))
	assert.True(t, other, "the mount Live did not account for is in its table")
	assertCurrent(t, l)

	// A failed change leaves nothing to trust either.
	err = l.Change(func() error { return unix.Unmount(filepath.Join(f.dir, "nothing"), 0) }, 0, 1,
		func(t Table) Table { return t })
	assert.Error(t, err)
	assertCurrent(t, l)
}

// Many goroutines changing their own mounts while another party mounts and
// unmounts too: at the end Live's table is the kernel's.
func TestLiveUnderConcurrentChanges(t *testing.T) {
	if !inPrivateNamespace(t) {
		return
	}
	const workers, rounds = 8, 20
	f := newBindFixture(t, workers+1)
	l := NewLive()
	defer l.Close()
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if _, err := l.Table(); err != nil {
					errs <- err
					return
				}
				if err := f.bind(l, w); err != nil {
					errs <- err
					return
				}
				if r%2 == 1 {
					if err := f.unbind(l, w); err != nil {
						errs <- err
						return
					}
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 0; r < rounds; r++ {
			if err := unix.Mount(f.src(workers), f.dst(workers), "", unix.MS_BIND, ""); err != nil {
				errs <- err
				return
			}
			if r%2 == 1 {
				if err := unix.Unmount(f.dst(workers), 0); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tab, err := l.Table()
	require.NoError(t, err)
	for w := 0; w <= workers; w++ {
		assert.Len(t, tab.At(f.dst(w)), rounds/2, "stacked mounts at %s", f.dst(w))
	}
	assertCurrent(t, l)
}

func TestDiffCount(t *testing.T) {
	for _, c := range []struct {
		a, b    []uint64
		in, out int
	}{
		{nil, nil, 0, 0},
		{[]uint64{1, 2, 3}, []uint64{1, 2, 3}, 0, 0},
		{[]uint64{1, 2, 3}, []uint64{1, 2, 3, 9}, 1, 0},
		{[]uint64{1, 2, 3}, []uint64{1, 3}, 0, 1},
		{[]uint64{1, 2, 3}, []uint64{1, 3, 7}, 1, 1},
		{[]uint64{5}, []uint64{1, 2}, 2, 1},
		{nil, []uint64{4}, 1, 0},
	} {
		in, out := diffCount(c.a, c.b)
		assert.Equal(t, [2]int{c.in, c.out}, [2]int{in, out}, "%v -> %v", c.a, c.b)
	}
}

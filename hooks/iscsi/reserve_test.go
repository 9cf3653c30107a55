package iscsi_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/hooks/iscsi"
)

// The key carries the generation in its upper 48 bits, so a node tells a
// newer owner's key from an older one; nodes differ in the lower 16.
func TestReservationKey(t *testing.T) {
	a3, err := iscsi.ReservationKey("node-a", 3)
	require.NoError(t, err)
	b4, err := iscsi.ReservationKey("node-b", 4)
	require.NoError(t, err)
	a4, err := iscsi.ReservationKey("node-a", 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), iscsi.KeyGeneration(a3))
	assert.Equal(t, uint64(4), iscsi.KeyGeneration(b4))
	assert.Less(t, a3, b4)
	assert.NotEqual(t, a4, b4)
	assert.Equal(t, a3&0xffff, a4&0xffff, "the node part stays")
	for _, bad := range []uint64{0, 1 << 48} {
		_, err := iscsi.ReservationKey("node-a", bad)
		assert.Error(t, err, "generation %d", bad)
	}
}

// What sg_persist(8) and camcontrol(8) print.
func TestParseKeysAndReservation(t *testing.T) {
	assert.Equal(t, []uint64{0x30a1b, 0x4c3d2}, iscsi.ParseKeys("  PR generation=0x2, 2 registered reservation keys follow:\n    0x30a1b\n    0x4c3d2\n"))
	assert.Empty(t, iscsi.ParseKeys("  PR generation=0x0, there are NO registered reservation keys\n"))
	assert.Equal(t, []uint64{0x30a1b}, iscsi.ParseKeys("PR Generation: 0x2\nNumber of keys: 1\n0: 0x30a1b\n"))

	k, ok := iscsi.ParseReservation("  PR generation=0x3, Reservation follows:\n    Key=0x4c3d2\n    scope: LU_SCOPE,  type: Write Exclusive, registrants only\n")
	assert.True(t, ok)
	assert.Equal(t, uint64(0x4c3d2), k)
	_, ok = iscsi.ParseReservation("  PR generation=0x3, there is NO reservation held\n")
	assert.False(t, ok)
	k, ok = iscsi.ParseReservation("PR Generation: 0x3\nReservation Key: 0x4c3d2\nScope address: 0\nReservation Type: Write Exclusive, Registrants Only\n")
	assert.True(t, ok)
	assert.Equal(t, uint64(0x4c3d2), k)
	_, ok = iscsi.ParseReservation("PR Generation: 0x0\nNo reservations.\n")
	assert.False(t, ok)
}

func TestReservationArgv(t *testing.T) {
	assert.Equal(t, []string{"sg_persist", "--no-inquiry", "--out", "--preempt", "--param-rk=0x4c3d2", "--param-sark=0x30a1b", "--prout-type=5", "/dev/sdb"}, iscsi.LinuxPreemptArgv("/dev/sdb", 0x4c3d2, 0x30a1b))
	assert.Equal(t, []string{"camcontrol", "persist", "da3", "-o", "preempt", "-k", "0x4c3d2", "-K", "0x30a1b", "-T", "wr_ex_ro"}, iscsi.FreeBSDPreemptArgv("/dev/da3", 0x4c3d2, 0x30a1b))
}

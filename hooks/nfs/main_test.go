package nfs

import (
	"os"
	"testing"

	"github.com/envhooks/envhooks/tests/testnet"
)

// The probe tests run on the loopback of a network namespace of their own
// (as root): the NFSv3 check asks the portmapper on port 111, where the
// tests want nobody, whatever the machine runs there.
func TestMain(m *testing.M) {
	testnet.Isolate()
	os.Exit(m.Run())
}

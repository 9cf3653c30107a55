//go:build linux || freebsd

package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// osFileSizes is the shape of an operating system's file tree: the share
// of files whose size falls in [lo, hi). It was measured on the Debian 12
// machine these benchmarks were written on (find /usr -xdev -type f:
// 127,391 files, 5.2 GiB); a FreeBSD base system is of the same kind, most
// of its files small (man pages, headers, locale and zone data) and many
// of its bytes in a few large ones. The top band is capped at 32 MiB, so a
// third of the image's bytes are in files over 4 MiB (62% in that /usr).
var osFileSizes = []struct {
	lo, hi int
	share  float64
}{
	{64, 1 << 10, 0.297},
	{1 << 10, 4 << 10, 0.371},
	{4 << 10, 16 << 10, 0.194},
	{16 << 10, 64 << 10, 0.097},
	{64 << 10, 256 << 10, 0.031},
	{256 << 10, 1 << 20, 0.007},
	{1 << 20, 4 << 20, 0.002},
	{4 << 20, 32 << 20, 0.001},
}

// filesPerDir is about what /usr has (127,391 files in 16,957 directories).
const filesPerDir = 8

// writeOSImage fills dir with an image of total bytes shaped like an
// operating system (osFileSizes): file sizes drawn at random within their
// band, the last file cut to make the total exact, spread over two levels
// of directories. The content is random, so nothing compresses, and the
// seed is fixed, so every run copies the same tree. It returns the number
// of files.
func writeOSImage(dir string, total int64) (int, error) {
	src := rand.NewChaCha8([32]byte{'e', 'n', 'v', 'h', 'o', 'o', 'k', 's'})
	rng := rand.New(src)
	buf := make([]byte, 32<<20)
	src.Read(buf)
	var written int64
	files := 0
	for written < total {
		size := int64(drawSize(rng))
		size = min(size, total-written)
		d := files / filesPerDir
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d/32), fmt.Sprintf("e%02d", d%32))
		if files%filesPerDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return files, err
			}
		}
		// Each file starts at another place in the random buffer, so no
		// two files are alike.
		off := rng.IntN(len(buf) - int(size) + 1)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", files)), buf[off:off+int(size)], 0o644); err != nil {
			return files, err
		}
		written += size
		files++
	}
	return files, nil
}

// drawSize picks a band by its share of files, then a size spread evenly
// on a log scale within the band.
func drawSize(rng *rand.Rand) int {
	x := rng.Float64()
	band := osFileSizes[len(osFileSizes)-1]
	for _, b := range osFileSizes {
		if x < b.share {
			band = b
			break
		}
		x -= b.share
	}
	lo, hi := math.Log(float64(band.lo)), math.Log(float64(band.hi))
	return int(math.Exp(lo + rng.Float64()*(hi-lo)))
}

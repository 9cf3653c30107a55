//go:build linux

package lab

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/envhooks/envhooks/tests/testenv"
)

// CacheEnv names the environment variable that moves the lab's cache.
const CacheEnv = "ENVHOOKS_LAB_CACHE"

// CacheDir is where the unpacked kernel, the initramfs and the lab's own
// programs are kept between runs.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return "/var/cache/envhooks-lab"
}

// Commands lists what the lab needs on the host.
var Commands = []string{"qemu-system-x86_64", "busybox", "apt-get", "apt-cache", "dpkg-deb", "depmod", "modprobe", "go"}

// Kernel is a Debian kernel package unpacked for guests, with the
// initramfs and the programs a guest runs.
type Kernel struct {
	Package string // linux-image-6.1.0-57-amd64
	Version string // 6.1.0-57-amd64
	Image   string // the vmlinuz
	Modules string // the unpacked lib/modules, bound over the guest's /lib/modules
	Initrd  string
	Agent   string // the guest's init (guestagent)
	Relay   string // what qemu runs for each forwarded connection
}

//go:embed init.sh
var initScript []byte

// stage1Modules are what the initramfs loads before it can mount the
// host's root; everything else loads from the real /lib/modules later.
var stage1Modules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// prepare makes the cache hold the kernel that linux-image-amd64 names
// today, an initramfs for it and freshly built guest programs. Test
// processes running at once take turns through a lock in the cache.
func prepare() (*Kernel, error) {
	for _, c := range Commands {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("the kernel lab needs %s (tests/install-deps installs it): %v", c, err)
		}
	}
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	lock := flock.New(filepath.Join(cache, ".lock"))
	if err := lock.Lock(); err != nil {
		return nil, err
	}
	defer lock.Unlock()

	pkg, err := kernelPackage()
	if err != nil {
		return nil, err
	}
	k := &Kernel{Package: pkg, Version: strings.TrimPrefix(pkg, "linux-image-")}
	root := filepath.Join(cache, pkg)
	if _, err := os.Stat(filepath.Join(root, ".ready")); err != nil {
		if err := unpackKernel(cache, pkg, k.Version); err != nil {
			return nil, err
		}
	}
	k.Image = filepath.Join(root, "boot", "vmlinuz-"+k.Version)
	k.Modules = filepath.Join(root, "lib", "modules")
	if k.Initrd, err = initramfs(root, k.Version); err != nil {
		return nil, err
	}
	bin := filepath.Join(cache, "bin")
	if err := buildPrograms(bin); err != nil {
		return nil, err
	}
	k.Agent, k.Relay = filepath.Join(bin, "guestagent"), filepath.Join(bin, "relay")
	return k, nil
}

var dependsLine = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][^\s]*-amd64)\s*$`)

// kernelPackage asks apt which versioned kernel package linux-image-amd64
// depends on now, updating the package lists once if apt knows none.
func kernelPackage() (string, error) {
	ask := func() (string, error) {
		out, err := command(30*time.Second, "", "apt-cache", "depends", "linux-image-amd64")
		if m := dependsLine.FindStringSubmatch(out); m != nil {
			return m[1], nil
		}
		if err == nil {
			err = errors.New("no linux-image-<version>-amd64 among its dependencies")
		}
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %v\n%s", err, out)
	}
	pkg, err := ask()
	if err == nil {
		return pkg, nil
	}
	if out, err := command(5*time.Minute, "", "apt-get", "update", "-qq"); err != nil {
		return "", fmt.Errorf("apt-get update: %v\n%s", err, out)
	}
	return ask()
}

// unpackKernel downloads the package (never installs it), unpacks it into
// the cache, indexes its modules, and drops the kernels of earlier runs.
func unpackKernel(cache, pkg, version string) error {
	dl, err := os.MkdirTemp(cache, "download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	if out, err := command(10*time.Minute, dl, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg); err != nil {
		return fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d packages", pkg, len(debs))
	}
	tmp := filepath.Join(dl, "root")
	if out, err := command(5*time.Minute, "", "dpkg-deb", "-x", debs[0], tmp); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	if out, err := command(5*time.Minute, "", "depmod", "-b", tmp, version); err != nil {
		return fmt.Errorf("depmod: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".ready"), nil, 0o644); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(cache, "linux-image-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	return os.Rename(tmp, filepath.Join(cache, pkg))
}

// initramfs builds (or finds) the initramfs: busybox, the stage 1 script
// and the stage 1 modules in load order. Its name carries a hash of what
// went in, so a change to any of them builds a new one.
func initramfs(root, version string) (string, error) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	var order []string
	seen := map[string]bool{}
	for _, m := range stage1Modules {
		out, err := command(time.Minute, "", "modprobe", "-d", root, "-S", version, "--show-depends", m)
		if err != nil {
			return "", fmt.Errorf("modprobe --show-depends %s: %v\n%s", m, err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "insmod" && !seen[f[1]] {
				seen[f[1]] = true
				order = append(order, f[1])
			}
		}
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(initScript)
	h.Write(bb)
	for _, m := range order {
		h.Write([]byte(m + "\n"))
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	out := filepath.Join(root, "initrd-"+sum+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	stage, err := os.MkdirTemp(root, "initrd-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	files := map[string][]byte{"init": initScript, "bin/busybox": bb}
	var names []string
	for _, m := range order {
		b, err := os.ReadFile(m)
		if err != nil {
			return "", err
		}
		files["modules/"+filepath.Base(m)] = b
		names = append(names, filepath.Base(m))
	}
	files["modules/order"] = []byte(strings.Join(names, "\n") + "\n")
	for name, data := range files {
		p := filepath.Join(stage, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			return "", err
		}
	}
	list := []string{"."}
	filepath.Walk(stage, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != stage {
			rel, _ := filepath.Rel(stage, p)
			list = append(list, rel)
		}
		return nil
	})
	sort.Strings(list)
	cmd := exec.Command(busybox, "cpio", "-o", "-H", "newc")
	cmd.Dir = stage
	cmd.Stdin = strings.NewReader(strings.Join(list, "\n") + "\n")
	var img, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &img, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("busybox cpio: %v\n%s", err, stderr.String())
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, img.Bytes(), 0o644); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(root, "initrd-*.cpio"))
	for _, o := range old {
		os.Remove(o)
	}
	return out, os.Rename(tmp, out)
}

// buildPrograms builds the guest agent and the relay from this tree
// (go build's cache makes a rebuild of unchanged sources cheap).
func buildPrograms(bin string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(bin), "bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-o", tmp+"/", "./tests/kernel/lab/guestagent", "./tests/kernel/lab/relay")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build the lab's programs: %v\n%s", err, out)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"guestagent", "relay"} {
		// A rename keeps the file a running guest or relay has open.
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	return nil
}

// command runs a host command under a deadline and returns its output.
func command(timeout time.Duration, dir string, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s did not finish within %s", argv[0], timeout)
	}
}

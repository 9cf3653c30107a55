package iscsi

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// FreeBSD's initiator, kept on every OS so that its exact syntax is tested
// on Linux too.
//
// iscsictl -A -p PORTAL -t TARGET builds the session from its flags alone:
// the initiator name is always the default one (iqn.1994-09.org.freebsd:
// <hostname>), and CHAP credentials would have to go on the command line,
// where ps shows them (usr.bin/iscsictl/iscsictl.c, main). A session added
// from a named section of a configuration file (iscsictl -A -n NICK -c
// FILE) takes both from the file (iscsi.conf(5)), so the login writes a
// section into a root-only temporary file and removes it once iscsictl has
// handed it to the kernel.

// FreeBSDNickname names the section of jname's target.
func FreeBSDNickname(jname string) string { return "envhooks-" + jname }

// FreeBSDLoginArgv adds the session described by section nick of file.
func FreeBSDLoginArgv(nick, file string) []string {
	return []string{"iscsictl", "-A", "-n", nick, "-c", file}
}

// FreeBSDConf is the iscsi.conf(5) section for one session. Every value is
// quoted: the parser (usr.bin/iscsictl/token.l) takes "..." as one string,
// which may hold anything but a double quote.
func FreeBSDConf(nick, target, portal, initiator string, chap *iscsi.Credentials) (string, error) {
	values := [][2]string{{"TargetAddress", portal}, {"TargetName", target}}
	if initiator != "" {
		values = append(values, [2]string{"InitiatorName", initiator})
	}
	if chap != nil {
		values = append(values, [2]string{"AuthMethod", "CHAP"}, [2]string{"chapIName", chap.User}, [2]string{"chapSecret", chap.Secret})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q {\n", nick)
	for _, kv := range values {
		if kv[1] == "" || strings.ContainsAny(kv[1], "\"\n\r\x00") {
			return "", fmt.Errorf("%s cannot be written into iscsi.conf(5): it is empty or holds a double quote or a line break", kv[0])
		}
		fmt.Fprintf(&b, "\t%s = \"%s\"\n", kv[0], kv[1])
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// writeFreeBSDConf writes the section into a new file only root can read
// and returns its path.
func writeFreeBSDConf(text string) (string, error) {
	f, err := os.CreateTemp("", "envhooks-iscsi-*.conf") // mode 0600, a name no one else chose
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// freebsdLogin writes the section, runs the login with it and removes it.
func (a *attachment) freebsdLogin(run func(argv []string) error) error {
	b := a.b
	text, err := FreeBSDConf(FreeBSDNickname(a.jname), a.target, a.portal, b.InitiatorName, b.CHAP)
	if err != nil {
		return sysexits.New(sysexits.Config, "iSCSI login to %s: %v", a.target, err)
	}
	file, err := writeFreeBSDConf(text)
	if err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot write the iscsi.conf section for %s: %v", a.target, err)
	}
	defer os.Remove(file)
	return run(FreeBSDLoginArgv(FreeBSDNickname(a.jname), file))
}

// FreeBSDSessionsVerboseArgv lists the sessions as JSON (libxo): the LUN
// of each device comes as a number from the kernel's own records
// (usr.bin/iscsictl/periphs.c), where camcontrol devlist prints it in hex.
func FreeBSDSessionsVerboseArgv() []string {
	return []string{"iscsictl", "--libxo=json", "-L", "-v"}
}

// FreeBSDDevice is one device node of a session and its LUN.
type FreeBSDDevice struct {
	Name string
	LUN  int
}

// FreeBSDSessionState is what iscsictl -L -v says about one session.
type FreeBSDSessionState struct {
	Target    string
	Portal    string
	Connected bool
	Reason    string // "failureReason" when not connected
	Devices   []FreeBSDDevice
}

// ParseFreeBSDSessionsJSON reads iscsictl --libxo=json -L -v. Its output
// also holds the sessions' CHAP secrets, so it is never logged.
func ParseFreeBSDSessionsJSON(out []byte) ([]FreeBSDSessionState, error) {
	var doc struct {
		Iscsictl struct {
			Session []struct {
				Target struct {
					Name   string `json:"name"`
					Portal string `json:"portal"`
				} `json:"target"`
				State         string `json:"state"`
				FailureReason string `json:"failureReason"`
				Devices       struct {
					LUN []struct {
						LUN    int    `json:"lun"`
						Device string `json:"device"`
					} `json:"lun"`
				} `json:"devices"`
			} `json:"session"`
		} `json:"iscsictl"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("iscsictl --libxo=json -L -v printed no JSON session list: %v", err)
	}
	var ss []FreeBSDSessionState
	for _, s := range doc.Iscsictl.Session {
		st := FreeBSDSessionState{Target: s.Target.Name, Portal: s.Target.Portal, Connected: s.State == "Connected", Reason: s.FailureReason}
		for _, l := range s.Devices.LUN {
			st.Devices = append(st.Devices, FreeBSDDevice{Name: l.Device, LUN: l.LUN})
		}
		ss = append(ss, st)
	}
	return ss, nil
}

package mounttab

import "strconv"

func devString(major, minor int) string {
	return strconv.Itoa(major) + ":" + strconv.Itoa(minor)
}

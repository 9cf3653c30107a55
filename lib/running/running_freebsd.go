package running

var defaultCheck = FreeBSDCheck

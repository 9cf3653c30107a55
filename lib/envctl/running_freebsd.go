package envctl

var defaultRunningCheck = FreeBSDRunningCheck

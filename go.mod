module github.com/bsdcarp/bsdcarp

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/google/gopacket v1.1.19
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require github.com/vishvananda/netns v0.0.5 // indirect

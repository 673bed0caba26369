# FreeBSD Handbook (OpenBSD-style CARP chapter), 28.4 "CARP Example", verbatim.
sysctl -w net.inet.carp.allow=1
ifconfig carp0 create
ifconfig carp0 vhid 1 pass lanpasswd \
     carpdev em0 advskew 100 10.0.0.1 255.255.255.0

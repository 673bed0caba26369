# FreeBSD Handbook (OpenBSD-style CARP chapter), 28.5, Firewall 1 (fw1), verbatim.
#Enable preemption and group interface failover
sysctl -w net.inet.carp.preempt=1

#Configure CARP on the LAN side
ifconfig carp0 create
ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 \
     172.16.0.100 255.255.255.0

#Configure CARP on the WAN side
ifconfig carp1 create
ifconfig carp1 vhid 2 pass wanpasswd carpdev em1 \
     192.0.2.100 255.255.255.0

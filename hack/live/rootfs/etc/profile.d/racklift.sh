# racklift live: show the appliance status on every interactive login.
case $- in
*i*) [ -x /usr/local/sbin/racklift-status ] && /usr/local/sbin/racklift-status ;;
esac

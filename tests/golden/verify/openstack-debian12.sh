# == sql-bind on Controller: MariaDB listens on the internal address 10.0.0.11 only (settle 0s)
v=$(mysql -N -B -e 'SELECT @@bind_address')
echo "bind_address=$v"
[ "$v" = 10.0.0.11 ]
# == sql-remote on Compute: MariaDB answers on 10.0.0.11:3306 from the compute node (a greeting, or its refusal of a host with no account yet) (settle 0s)
exec 3<>/dev/tcp/10.0.0.11/3306
greeting=$(timeout 5 head -c 64 <&3 | tr -dc '[:print:]')
echo "greeting: $greeting"
case $greeting in *MariaDB*|*[0-9].[0-9]*|*"is not allowed to connect"*) ;; *) exit 1 ;; esac
# == amqp-login on Compute: RabbitMQ on controller:5672 accepts user openstack with RABBIT_PASS (settle 0s)
py=$(command -v python3 || command -v python)
"$py" /root/.lab/files/verify/amqp-login.py controller openstack /root/.lab/secrets/RABBIT_PASS
# == amqp-wrong-password on Compute: RabbitMQ on controller:5672 refuses a wrong password (settle 0s)
status=0
py=$(command -v python3 || command -v python)
"$py" /root/.lab/files/verify/amqp-login.py controller openstack not-the-password || status=$?
[ "$status" -eq 1 ]
# == memcached on Compute: memcached answers `stats` on controller:11211 (by name) (settle 0s)
exec 3<>/dev/tcp/controller/11211
printf 'stats\r\nquit\r\n' >&3
out=$(timeout 5 cat <&3)
echo "$out" | grep -E '^STAT (pid|version|uptime) '
echo "$out" | grep -q '^STAT pid '
# == chrony on Compute: chrony on the compute node follows controller (10.0.0.11) (settle 90s)
chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'
chronyc -n tracking | grep -q "^Reference ID.*(10.0.0.11)"
# == client-compute on Compute: the OpenStack client runs on the compute node (settle 0s)
openstack --version 2>&1
# == client-controller on Controller: the OpenStack client runs on the controller (settle 0s)
openstack --version 2>&1
# == uploaded /root/.lab/files/verify/amqp-login.py (mode 0644)
import socket, struct, sys
host, user, pw = sys.argv[1], sys.argv[2], open(sys.argv[3]).read() if sys.argv[3].startswith('/') else sys.argv[3]
def frame():
    hdr = b''
    while len(hdr) < 7:
        chunk = s.recv(7 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    size = struct.unpack('>BHI', hdr)[2]
    body = b''
    while len(body) < size + 1:
        chunk = s.recv(size + 1 - len(body))
        if not chunk:
            return None
        body += chunk
    return struct.unpack('>HH', body[:4])
try:
    s = socket.create_connection((host, 5672), 10)
    s.sendall(b'AMQP\x00\x00\x09\x01')
    start = frame()
except Exception as e:
    start = e
if start != (10, 10):
    print('no amqp broker on %s:5672 (%s)' % (host, start))
    sys.exit(2)
resp = b'\x00' + user.encode() + b'\x00' + pw.encode()
args = struct.pack('>I', 0) + struct.pack('>B', 5) + b'PLAIN' + struct.pack('>I', len(resp)) + resp + struct.pack('>B', 5) + b'en_US'
payload = struct.pack('>HH', 10, 11) + args
s.sendall(struct.pack('>BHI', 1, 0, len(payload)) + payload + b'\xce')
try:
    reply = frame()
except (socket.error, OSError):
    reply = None  # RabbitMQ drops the connection on a failed login
if reply == (10, 30):
    print('amqp login as %s on %s:5672 accepted (connection.tune)' % (user, host))
    sys.exit(0)
print('amqp login as %s on %s:5672 refused (%s)' % (user, host, reply and 'connection.close' or 'connection dropped'))
sys.exit(1)

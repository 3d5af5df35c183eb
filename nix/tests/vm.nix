# checks.<system>.vm: two NixOS VMs with real OpenZFS.
#
#   controller: services.hozo.controller, pool `tank`, node-exporter, a webhook receiver
#   box:        services.hozo.agent, pool `backup`
#
# 1. Full replication while the box is already up: the run leaves it up (only a box the run woke
#    is put back to sleep). `hozo status --json` reports the run; `hozo shutdown box` asks the
#    agent to power the box off, and hozo-poweroff.service exports the pool on the way down.
# 2. Incremental replication to the powered-off box: the controller sends the magic packet
#    (captured with tcpdump on the controller), the test driver then starts the box VM, because
#    QEMU does not wake a stopped VM on a magic packet (the driver plays the part of the NIC).
#    The job waits for the agent's `prepare`, replicates, and the agent powers the box off.
# 3. The box boots a third time: the pool is imported at boot, the data matches, the agent
#    refuses `zfs destroy` and a shell (exit 2), and the box's own retention prunes as user hozo.
{ pkgs, self }:

let
  inherit (pkgs) lib;
  # nixpkgs' throw-away test key pair (not copied here). It serves as the controller's client
  # key and as the box's host key, so both are known when the configuration is evaluated.
  snakeOil = import "${pkgs.path}/nixos/tests/ssh-keys.nix" pkgs;
  # The MAC the test driver gives machine <machine>'s NIC on vlan <net>: 52:54:00:12:<net>:<machine>, two hex digits
  # each. Written here rather than imported from nixos/lib/qemu-common.nix, whose arguments changed across releases;
  # the test script checks that the box's NIC really has it, so a change in the driver fails there, by name.
  nicMac =
    net: machine:
    let
      hex2 = n: lib.fixedWidthString 2 "0" (lib.toLower (lib.toHexString n));
    in
    "52:54:00:12:${hex2 net}:${hex2 machine}";

  common = {
    virtualisation.emptyDiskImages = [ 2048 ];
    virtualisation.memorySize = 2048;
    boot.supportedFilesystems = [ "zfs" ];
    # QEMU's virtio disks have no /dev/disk/by-id links, where boot.zfs.extraPools looks by default.
    boot.zfs.devNodes = "/dev/disk/by-uuid";
  };

  # Records what the controller's webhook channel sends (headers only).
  webhookReceiver = pkgs.writeText "webhook-receiver.py" ''
    import http.server


    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            h = self.headers
            line = f"{h.get('Authorization')} job={h.get('X-Hozo-Job')} result={h.get('X-Hozo-Result')}"
            with open("/tmp/webhook.log", "a") as log:
                print(line, file=log)
            self.send_response(204)
            self.end_headers()


    http.server.HTTPServer(("127.0.0.1", 8080), Hook).serve_forever()
  '';
in
pkgs.testers.runNixOSTest {
  name = "hozo";

  nodes.box =
    { ... }:
    {
      imports = [
        common
        self.nixosModules.agent
      ];
      networking.hostId = "8425e349";

      services.openssh = {
        enable = true;
        hostKeys = [
          {
            type = "ecdsa";
            path = "/etc/ssh/ssh_host_ecdsa_key";
          }
        ];
      };
      environment.etc."ssh/ssh_host_ecdsa_key" = {
        source = snakeOil.snakeOilPrivateKey;
        mode = "0600";
      };

      services.hozo.agent = {
        enable = true;
        authorizedKeys = [ snakeOil.snakeOilPublicKey ];
        roots = [ "backup/hozo" ];
        # Longer than this test: only the shutdown requests may power the box off.
        idlePoweroffMinutes = 120;
        # Not during the test (it would drop t1 before it is checked): the script prunes itself.
        pruneSchedule = "*-01-01 04:00:00";
      };
    };

  nodes.controller =
    { nodes, ... }:
    {
      imports = [
        common
        self.nixosModules.controller
      ];
      networking.hostId = "cc3b1a2f";
      environment.systemPackages = [
        pkgs.curl
        pkgs.tcpdump
      ];

      services.prometheus.exporters.node.enable = true;

      systemd.services.webhook-receiver = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${lib.getExe pkgs.python3} ${webhookReceiver}";
      };

      services.hozo.controller = {
        enable = true;
        logFile = "/var/log/hozo/hozo.log";
        # The token reaches the job through LoadCredential; the test script writes the file.
        notify = [
          {
            type = "webhook";
            url = "http://127.0.0.1:8080/hozo";
            tokenFile = "/var/lib/hozo-secrets/webhook-token";
            on = "always";
          }
        ];
        hosts.box = {
          address = "box";
          # A quoted path outside the store; the test script puts the key there.
          sshKeyFile = "/var/lib/hozo-secrets/box-key";
          hostPublicKey = snakeOil.snakeOilPublicKey;
          wake = {
            method = "wol";
            # The MAC the test driver gives the box's NIC on vlan 1.
            mac = nicMac 1 nodes.box.virtualisation.test.nodeNumber;
            address = "192.168.1.255";
          };
          # Long enough for a VM to boot under TCG.
          readyTimeout = "10m";
          # The recommended setup with services.hozo.agent on the box.
          shutdown = "agent";
          leaseTtl = "1h";
        };
        jobs.offsite = {
          host = "box";
          datasets = [
            {
              source = "tank/data";
              target = "backup/hozo/data";
            }
          ];
          snapshots.policy = {
            hourly = 24;
            daily = 7;
          };
          shutdownAfter = true;
        };
      };
    };

  testScript =
    { nodes, ... }:
    let
      mac = nodes.controller.services.hozo.controller.hosts.box.wake.mac;
      macHex = lib.toLower (lib.replaceStrings [ ":" ] [ "" ] mac);
    in
    ''
      import json
      import shlex

      MAGIC = "ff" * 6 + "${macHex}" * 16
      SSH = "ssh -i /var/lib/hozo-secrets/box-key -o BatchMode=yes -o ConnectTimeout=10 hozo@box"


      def start_job():
          # Start hozo-offsite.service without waiting, and wait until this run has begun.
          before = controller.succeed("systemctl show -P InvocationID hozo-offsite.service").strip()
          controller.succeed("systemctl start --no-block hozo-offsite.service")
          controller.wait_until_succeeds(
              f"test \"$(systemctl show -P InvocationID hozo-offsite.service)\" != '{before}'"
          )


      def wait_job_success():
          # Wait for the run to end (or to fail into auto-restart) and require exit 0 (`hozo run`: success).
          controller.wait_until_succeeds(
              "state=$(systemctl show -P ActiveState hozo-offsite.service);"
              " sub=$(systemctl show -P SubState hozo-offsite.service);"
              " [ \"$state\" = inactive ] || [ \"$state\" = failed ] || [ \"$sub\" = auto-restart ]",
              timeout=1200,
          )
          result = controller.succeed("systemctl show -P Result hozo-offsite.service").strip()
          status = controller.succeed("systemctl show -P ExecMainStatus hozo-offsite.service").strip()
          if result != "success" or status != "0":
              print(controller.succeed("journalctl -u hozo-offsite.service --no-pager"))
              raise Exception(f"hozo-offsite.service: Result={result} ExecMainStatus={status}")


      def hozo_status():
          # `hozo status --json` as root (reads /etc/hozo/config.json; never wakes the box).
          return json.loads(controller.succeed("hozo status --json"))


      def guid(machine, snapshot):
          return machine.succeed(f"zfs get -H -p -o value guid {shlex.quote(snapshot)}").strip()


      def agent_request(request):
          # One request with the controller's key: (exit code, stderr).
          code, _ = controller.execute(f"{SSH} {request} 2>/tmp/agent.err")
          return code, controller.succeed("cat /tmp/agent.err")


      start_all()

      with subtest("pools, datasets, secrets"):
          box.wait_for_unit("multi-user.target")
          # The wake MAC (nicMac) is the box's NIC's own address.
          box.succeed("grep -qix '${mac}' /sys/class/net/*/address")
          box.succeed(
              "zpool create -f -O mountpoint=none backup /dev/vdb",
              "systemctl restart hozo-agent-zfs.service",
          )
          box.succeed("test \"$(zfs get -H -o value canmount backup/hozo)\" = off")
          for perm in ["receive", "canmount", "destroy", "send", "hold"]:
              box.succeed(f"zfs allow backup/hozo | grep -q 'user hozo .*{perm}'")
          # The agent is not root, so its own `zpool export` is off (hozo-poweroff.service exports).
          agent_config = json.loads(box.succeed("cat /etc/hozo-agent/config.json"))
          assert agent_config["exportOnShutdown"] is False, agent_config

          controller.wait_for_unit("multi-user.target")
          controller.succeed(
              "zpool create -f -O mountpoint=none tank /dev/vdb",
              "zfs create -o mountpoint=/tank/data tank/data",
              "dd if=/dev/urandom of=/tank/data/blob bs=1M count=32 status=none",
              "echo first > /tank/data/note",
              "zfs snapshot tank/data@t1",
              "systemctl restart hozo-zfs-delegation.service",
              "install -D -m 0600 ${snakeOil.snakeOilPrivateKey} /var/lib/hozo-secrets/box-key",
              "install -m 0600 /dev/null /var/lib/hozo-secrets/webhook-token",
              "echo -n s3cret-webhook-token > /var/lib/hozo-secrets/webhook-token",
          )
          controller.succeed("zfs allow tank/data | grep -q 'user hozo .*send'")
          # The job's unit and timer exist; the config the unit reads names the credentials.
          controller.succeed("systemctl list-timers --all | grep -q hozo-offsite.timer")
          controller.succeed(
              "grep -q /run/credentials/hozo-offsite.service/ssh-key-box /etc/hozo/jobs/offsite.json",
              "grep -q /run/credentials/hozo-offsite.service/notify-0-token /etc/hozo/jobs/offsite.json",
          )
          controller.wait_for_open_port(8080)

      with subtest("sanoid takes snapshots from jobs.offsite.snapshots.policy"):
          controller.succeed("systemctl start sanoid.service")
          controller.succeed("zfs list -H -t snapshot -o name tank/data | grep -q '@autosnap_'")

      with subtest("first run: full replication to a box that was already up, which stays up"):
          box.wait_for_unit("sshd.service")
          start_job()
          wait_job_success()
          # The agent set canmount=noauto (as user hozo) after the first receive.
          box.succeed("test \"$(zfs get -H -o value canmount backup/hozo/data)\" = noauto")
          box.succeed("test \"$(zfs get -H -o value mounted backup/hozo/data)\" = no")
          st = hozo_status()
          [job] = st["jobs"]
          assert job["job"] == "offsite" and job["state"]["lastRun"]["result"] == "ok", job
          [host] = st["hosts"]
          assert host["name"] == "box" and host["awake"], host
          # The run released its lease and asked for no shutdown: the box was up before it.
          assert host["agent"]["leases"] == [] and not host["agent"]["shutdownPending"], host["agent"]

      with subtest("the webhook channel got the run, with the token from its credential"):
          controller.wait_until_succeeds(
              "grep -q 'Bearer s3cret-webhook-token job=offsite result=ok' /tmp/webhook.log"
          )

      with subtest("metrics reach node-exporter"):
          controller.wait_for_unit("prometheus-node-exporter.service")
          controller.wait_for_open_port(9100)
          controller.succeed("test -s /var/lib/prometheus-node-exporter-text-files/hozo_offsite.prom")
          controller.succeed(
              "curl -sf http://127.0.0.1:9100/metrics"
              " | grep -E '^hozo_job_last_run_success\\{[^}]*job=\"offsite\"[^}]*\\} 1$'"
          )
          controller.succeed("test -s /var/log/hozo/hozo.log")

      with subtest("hozo shutdown: the agent powers the box off"):
          report = json.loads(controller.succeed("hozo shutdown box --json"))
          assert report["shutdown"] == "done", report
          box.wait_for_shutdown()
          assert not hozo_status()["hosts"][0]["awake"]

      with subtest("second run: wake the sleeping box, incremental replication, the agent powers it off"):
          controller.succeed(
              "echo second > /tank/data/note",
              "zfs snapshot tank/data@t2",
              "systemd-run --unit=wol-capture tcpdump -Z root -i eth1 -U -c 1 -w /tmp/wol.pcap 'udp and dst port 9'",
          )
          controller.wait_until_succeeds("journalctl -u wol-capture.service | grep -q 'listening on'")
          start_job()
          # The magic packet went out, addressed to the box's NIC.
          controller.wait_until_succeeds("test -s /tmp/wol.pcap", timeout=120)
          controller.wait_until_succeeds(
              f"od -An -v -tx1 /tmp/wol.pcap | tr -d ' \\n' | grep -q {MAGIC}", timeout=30
          )
          # What the NIC would do on that packet.
          box.start()
          wait_job_success()
          # This run woke the box, so it asked the agent to power it off again.
          box.wait_for_shutdown()
          controller.succeed(
              "curl -sf http://127.0.0.1:9100/metrics"
              " | grep -E '^hozo_host_wake_seconds\\{[^}]*host=\"box\"[^}]*\\} [0-9.e+-]+$'"
          )
          assert hozo_status()["jobs"][0]["state"]["lastRun"]["result"] == "ok"
          # The verified base is held and bookmarked on the source (OpenZFS has bookmarks). User
          # hozo has no `destroy` delegated, so the previous run's bookmark may stay as well.
          controller.succeed("zfs holds -H tank/data@t2 | grep -q 'hozo:offsite'")
          controller.succeed("zfs list -H -t bookmark -o name tank/data | grep -qx 'tank/data#hozo:offsite:t2'")

      with subtest("the box boots with its pool and holds both snapshots"):
          box.start()
          box.wait_for_unit("multi-user.target")
          box.wait_for_unit("hozo-agent-zfs.service")
          # hozo-poweroff.service exported the pool on the way down; boot.zfs.extraPools imported it.
          box.succeed("journalctl -b -1 -u hozo-poweroff.service --no-pager | grep -q 'exported backup'")
          box.succeed("zpool list -H -o health backup | grep -q ONLINE")
          for snap in ["t1", "t2"]:
              assert guid(box, f"backup/hozo/data@{snap}") == guid(controller, f"tank/data@{snap}"), snap
          # Run 1 created the dataset with a full receive; a receive into the existing dataset
          # (run 2's incremental) goes through OpenZFS's temporary clone <dataset>/%recv.
          box.succeed("zpool history -i backup | grep -q 'backup/hozo/data/%recv'")
          # Both ends can resume (OpenZFS): the agent received with -s, so a cut-off transfer
          # would have left a receive_resume_token instead of starting over.
          box.succeed("zpool history backup | grep -q 'zfs receive -u -s backup/hozo/data'")
          box.succeed("mkdir -p /mnt/check && mount -t zfs -o ro backup/hozo/data@t2 /mnt/check")
          assert box.succeed("cat /mnt/check/note").strip() == "second"
          assert box.succeed("sha256sum < /mnt/check/blob") == controller.succeed(
              "sha256sum < /tank/data/blob"
          )
          box.succeed("umount /mnt/check")

      with subtest("the agent refuses anything but its protocol (exit 2)"):
          box.wait_for_unit("sshd.service")
          code, err = agent_request("zfs destroy -r backup/hozo/data")
          assert code == 2 and "hozo-agent: refused" in err, (code, err)
          # The key was accepted: the refusal came from the agent, not from sshd, and it is logged.
          box.succeed("journalctl -b --no-pager | grep -q 'Accepted publickey for hozo'")
          box.succeed("grep -q 'refused.*zfs destroy' /var/lib/hozo-agent/agent.log")
          box.succeed("zfs list backup/hozo/data")
          box.succeed("zfs list -t snapshot backup/hozo/data@t1")
          code, err = agent_request("sh -c 'touch /tmp/owned'")
          assert code == 2 and "hozo-agent: refused" in err, (code, err)
          box.fail("test -e /tmp/owned")
          # restrict: a remote forward is refused at once (ssh exits 255; timeout's 124 would mean
          # the forward was granted and the tunnel held).
          controller.succeed(
              f"timeout 30 {SSH} -N -o ExitOnForwardFailure=yes -R 2222:127.0.0.1:22; test $? -eq 255"
          )
          # A verb of the protocol works with the same key.
          status = json.loads(controller.succeed(f"{SSH} status"))
          assert status["pools"][0]["name"] == "backup" and status["pools"][0]["healthy"], status

      with subtest("the idle guard, the power-off unit and the polkit rule"):
          box.succeed("systemctl list-timers --all | grep -q hozo-agent-idle.timer")
          # idle-check runs sandboxed as hozo with its state directory writable; not idle yet.
          box.succeed("systemctl start hozo-agent-idle.service")
          box.succeed("journalctl -u hozo-agent-idle.service --no-pager | grep -q '\"action\":\"none\"'")
          box.succeed("systemctl cat hozo-poweroff.service")
          # polkit lets hozo start hozo-poweroff.service, and nothing else.
          box.fail("runuser -u hozo -- systemctl start sshd.service")

      with subtest("the box's own retention prunes as user hozo (destroy delegation)"):
          box.succeed("systemctl list-timers --all | grep -q hozo-agent-prune.timer")
          # All snapshots are from today: daily/weekly/monthly keep the newest, t2, and nothing else.
          box.succeed("systemctl start hozo-agent-prune.service")
          box.succeed("zfs list -t snapshot backup/hozo/data@t2")
          box.fail("zfs list -t snapshot backup/hozo/data@t1")
          box.succeed("grep -q 'prune destroyed' /var/lib/hozo-agent/agent.log")
    '';
}

# checks.<system>.vm: two NixOS VMs with real OpenZFS.
#
#   controller: services.hozo.controller, pool `tank`, node-exporter
#   box:        services.hozo.agent, pool `backup`
#
# 1. Full replication while the box is up; the job asks the agent to shut the box down.
# 2. Incremental replication to the powered-off box: the controller sends the magic packet
#    (captured with tcpdump on the controller), the test driver then starts the box VM, because
#    QEMU does not wake a stopped VM on a magic packet (the driver plays the part of the NIC).
#    The job waits for SSH, replicates, and powers the box off again.
# 3. The box boots a third time: the pool is imported at boot, the data matches, and the
#    agent refuses `zfs destroy` and a shell from the controller's key.
{ pkgs, self }:

let
  inherit (pkgs) lib;
  # nixpkgs' throw-away test key pair (not copied here). It serves as the controller's client
  # key and as the box's host key, so both are known when the configuration is evaluated.
  snakeOil = import "${pkgs.path}/nixos/tests/ssh-keys.nix" pkgs;
  qemuCommon = import "${pkgs.path}/nixos/lib/qemu-common.nix" {
    inherit lib;
    inherit (pkgs) stdenv;
  };

  common = {
    virtualisation.emptyDiskImages = [ 2048 ];
    virtualisation.memorySize = 2048;
    boot.supportedFilesystems = [ "zfs" ];
  };
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
        # Longer than this test: only the job's shutdown request may power the box off.
        idlePoweroffMinutes = 120;
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

      services.hozo.controller = {
        enable = true;
        logFile = "/var/log/hozo/hozo.log";
        hosts.box = {
          address = "box";
          # A quoted path outside the store; the test script puts the key there.
          sshKeyFile = "/var/lib/hozo-secrets/box-key";
          hostPublicKey = snakeOil.snakeOilPublicKey;
          wake = {
            method = "wol";
            # The MAC the test driver gives the box's NIC on vlan 1.
            mac = qemuCommon.qemuNicMac 1 nodes.box.virtualisation.test.nodeNumber;
            address = "192.168.1.255";
          };
          # Long enough for a VM to boot under TCG.
          readyTimeout = "10m";
          shutdown = "agent";
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
      import shlex

      MAGIC = "ff" * 6 + "${macHex}" * 16
      SSH = "ssh -i /var/lib/hozo-secrets/box-key -o BatchMode=yes -o ConnectTimeout=10 hozo@box"


      def start_job():
          """Start hozo-offsite.service without waiting, and wait until this run has begun."""
          before = controller.succeed("systemctl show -P InvocationID hozo-offsite.service").strip()
          controller.succeed("systemctl start --no-block hozo-offsite.service")
          controller.wait_until_succeeds(
              f"test \"$(systemctl show -P InvocationID hozo-offsite.service)\" != '{before}'"
          )


      def wait_job_success():
          """Wait for the run to end (or to fail into auto-restart) and require exit 0."""
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


      def guid(machine, snapshot):
          return machine.succeed(f"zfs get -H -p -o value guid {shlex.quote(snapshot)}").strip()


      start_all()

      with subtest("pools, datasets, key"):
          box.wait_for_unit("multi-user.target")
          box.succeed(
              "zpool create -f -O mountpoint=none backup /dev/vdb",
              "systemctl restart hozo-agent-zfs.service",
          )
          box.succeed("test \"$(zfs get -H -o value canmount backup/hozo)\" = off")
          box.succeed("zfs allow backup/hozo | grep -q 'user hozo .*receive'")

          controller.wait_for_unit("multi-user.target")
          controller.succeed(
              "zpool create -f -O mountpoint=none tank /dev/vdb",
              "zfs create -o mountpoint=/tank/data tank/data",
              "dd if=/dev/urandom of=/tank/data/blob bs=1M count=32 status=none",
              "echo first > /tank/data/note",
              "zfs snapshot tank/data@t1",
              "systemctl restart hozo-zfs-delegation.service",
              "install -D -m 0600 ${snakeOil.snakeOilPrivateKey} /var/lib/hozo-secrets/box-key",
          )
          controller.succeed("zfs allow tank/data | grep -q 'user hozo .*send'")
          # The job's unit and timer exist; the config the unit reads names the credential.
          controller.succeed("systemctl list-timers --all | grep -q hozo-offsite.timer")
          controller.succeed(
              "grep -q /run/credentials/hozo-offsite.service/ssh-key-box /etc/hozo/jobs/offsite.json"
          )

      with subtest("sanoid takes snapshots from jobs.offsite.snapshots.policy"):
          controller.succeed("systemctl start sanoid.service")
          controller.succeed("zfs list -H -t snapshot -o name tank/data | grep -q '@autosnap_'")

      with subtest("first run: full replication, then the box shuts itself down"):
          box.wait_for_unit("sshd.service")
          start_job()
          wait_job_success()
          box.wait_for_shutdown()

      with subtest("metrics reach node-exporter"):
          controller.wait_for_unit("prometheus-node-exporter.service")
          controller.wait_for_open_port(9100)
          controller.succeed("ls /var/lib/prometheus-node-exporter-text-files/ | grep -q '\\.prom$'")
          controller.succeed(
              "curl -sf http://127.0.0.1:9100/metrics"
              " | grep -E '^hozo_job_last_run_success\\{[^}]*offsite[^}]*\\} 1$'"
          )
          controller.succeed("test -s /var/log/hozo/hozo.log")

      with subtest("second run: wake the sleeping box, incremental replication"):
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
          box.wait_for_shutdown()

      with subtest("the box boots with its pool and holds both snapshots"):
          box.start()
          box.wait_for_unit("multi-user.target")
          box.wait_for_unit("hozo-agent-zfs.service")
          for snap in ["t1", "t2"]:
              assert guid(box, f"backup/hozo/data@{snap}") == guid(controller, f"tank/data@{snap}"), snap
          # Run 1 created the dataset with a full receive; a receive into the existing dataset
          # (run 2's incremental) goes through OpenZFS's temporary clone <dataset>/%recv.
          box.succeed("zpool history -i backup | grep -q 'backup/hozo/data/%recv'")
          box.succeed("mkdir -p /mnt/check && mount -t zfs -o ro backup/hozo/data@t2 /mnt/check")
          assert box.succeed("cat /mnt/check/note").strip() == "second"
          assert box.succeed("sha256sum < /mnt/check/blob") == controller.succeed(
              "sha256sum < /tank/data/blob"
          )
          box.succeed("umount /mnt/check")

      with subtest("the agent refuses anything but its protocol"):
          box.wait_for_unit("sshd.service")
          controller.fail(f"{SSH} zfs destroy -r backup/hozo/data")
          # The key was accepted: the refusal came from the agent, not from sshd.
          box.succeed("journalctl -b --no-pager | grep -q 'Accepted publickey for hozo'")
          box.succeed("zfs list backup/hozo/data")
          box.succeed("zfs list -t snapshot backup/hozo/data@t1")
          controller.fail(f"{SSH} sh -c 'touch /tmp/owned'")
          box.fail("test -e /tmp/owned")
          # restrict: a remote forward is refused at once (ssh exits 255; timeout's 124 would mean
          # the forward was granted and the tunnel held).
          controller.succeed(
              f"timeout 30 {SSH} -N -o ExitOnForwardFailure=yes -R 2222:127.0.0.1:22; test $? -eq 255"
          )

      with subtest("the idle guard and the power-off unit are installed"):
          box.succeed("systemctl list-timers --all | grep -q hozo-agent-idle.timer")
          box.succeed("systemctl cat hozo-poweroff.service")
          # polkit lets hozo start hozo-poweroff.service, and nothing else.
          box.fail("runuser -u hozo -- systemctl start sshd.service")
    '';
}

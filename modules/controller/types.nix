# The option types of services.hozo.controller: a job, its datasets and hooks, a host and its wake method, a
# notification channel, a snapshot policy. modules/controller.nix declares the options with them and renders the
# binary's config from their values (src/config/schema.ts is the contract for both).
{ lib }:

let
  inherit (lib)
    literalExpression
    mapAttrs
    mkDefault
    mkOption
    optional
    types
    ;
  # Either seconds or a duration string like "5m" (the binary's duration rule).
  durationType = types.either types.ints.unsigned (types.strMatching "[0-9]+(\\.[0-9]+)?([smhd][0-9.smhd]*)?");
  # A rate for pv -L, as src/pipeline/bandwidth.ts checks it: a whole number and K, M or G (1024-based).
  bandwidthType = types.strMatching "[1-9][0-9]{0,6}[KMG]";
  bandwidthOption =
    which:
    mkOption {
      type = types.nullOr bandwidthType;
      default = null;
      example = "20M";
      description = ''
        Cap on the stream rate in bytes per second (`K`, `M`, `G`: 1024-based, as `pv -L` takes it), for
        backups and restores alike; ${which}
      '';
    };

  # A hook (src/config/schema.ts hookSchema): an argv, never a shell string.
  hookModule = {
    options = {
      command = mkOption {
        type = types.nonEmptyListOf types.str;
        example = [
          "/run/current-system/sw/bin/psql"
          "-c"
          "CHECKPOINT"
        ];
        description = "The command and its arguments (no shell: write `[ \"sh\" \"-c\" \"…\" ]` for one).";
      };
      timeout = mkOption {
        type = durationType;
        default = 120;
        description = "Killed (its whole process group) after this long; the hook then failed.";
      };
    };
  };
  hookOption =
    point: what:
    mkOption {
      type = types.nullOr (types.submodule hookModule);
      default = null;
      description = "The `${point}` hook: ${what}";
    };
  hookOptions = {
    preRun = hookOption "preRun" "runs before anything else (before the box is woken; for a dataset entry, before its transfer). Failing, nothing is done (for that entry) and the run exits 1.";
    postRun = hookOption "postRun" "runs at the end, whatever happened (`HOZO_RESULT` says how it went). Failing, a warning.";
    preSnapshot = hookOption "preSnapshot" "runs before the job's own snapshot (`snapshots.own.enable`), e.g. a database `CHECKPOINT`. Failing: no snapshot and a failed dataset (exit 1); the other entries go on.";
    postSnapshot = hookOption "postSnapshot" "runs after the own snapshot, also when it failed, once `preSnapshot` succeeded (`HOZO_SNAPSHOT_OK` is 1 or 0).";
  };
  renderHooks =
    h:
    let
      set = lib.filterAttrs (_: v: v != null) h;
    in
    if set == { } then null else mapAttrs (_: v: { inherit (v) command timeout; }) set;

  datasetModule = {
    options = {
      source = mkOption {
        type = types.str;
        example = "tank/home";
        description = "Local dataset to replicate.";
      };
      target = mkOption {
        type = types.str;
        example = "backup/hozo/home";
        description = "Dataset on the job's host to receive into (below one of the agent's `roots`).";
      };
      recursive = mkOption {
        type = types.bool;
        default = false;
        description = "Replicate the datasets below `source` as well.";
      };
      exclude = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "tank/home/cache" ];
        description = "Descendants of `source` to leave out (only with `recursive = true`).";
      };
      allowPlaintext = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Send this dataset (and, with `recursive`, those below it) to an untrusted host in the clear when
          it is not encrypted. Without it an unencrypted dataset is refused and nothing of it is sent;
          encrypted ones always go raw (`zfs send -w`). `hozo config check` warns about it.
        '';
      };
      hooks = hookOptions;
    };
  };

  wakeModule = {
    options = {
      method = mkOption {
        type = types.enum [
          "wol"
          "ssh-relay"
          "http"
          "command"
          "none"
        ];
        default = "wol";
        description = "How to wake the host before a run.";
      };
      mac = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "52:54:00:7a:0b:01";
        description = "MAC address for the magic packet (`method = \"wol\"`).";
      };
      address = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.1.255";
        description = "Broadcast (or unicast) address the magic packet is sent to.";
      };
      port = mkOption {
        type = types.port;
        default = 9;
        description = "UDP port of the magic packet.";
      };
      packets = mkOption {
        type = types.ints.between 2 20;
        default = 3;
        description = "Magic packets to send (some NICs miss the first).";
      };
      relayHost = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "relay";
        description = ''
          `method = "ssh-relay"`: another entry of `services.hozo.controller.hosts`, an always-on
          machine at the box's site that runs `command` (default `wakeonlan -i <address> <mac>`).
          Its SSH key reaches the job units through `LoadCredential=` like the box's. Give the relay
          `shutdown = "none"`: it is never a job's host.
        '';
      };
      command = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        example = [
          "wakeonlan"
          "-i"
          "192.168.1.255"
          "52:54:00:7a:0b:01"
        ];
        description = ''
          Argument vector (no shell): run on the relay (`method = "ssh-relay"`, default
          `wakeonlan -i <address> <mac>`) or on this machine as the service user (`method = "command"`).
        '';
      };
      url = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://homeassistant.lan/api/webhook/wake-backupbox";
        description = ''
          `method = "http"`: the URL that powers the box on (a smart plug, a Home Assistant webhook).
          It ends up in the world-readable Nix store with the rest of the config: do not put a
          secret token in it; use `method = "command"` with a script that reads one instead.
        '';
      };
      httpMethod = mkOption {
        type = types.enum [
          "GET"
          "POST"
        ];
        default = "POST";
        description = "HTTP method for `method = \"http\"`.";
      };
    };
  };

  hostModule =
    { name, ... }:
    {
      options = {
        address = mkOption {
          type = types.str;
          example = "backupbox.lan";
          description = "Host name or IP address of the backup box.";
        };
        port = mkOption {
          type = types.port;
          default = 22;
          description = "SSH port of the backup box.";
        };
        user = mkOption {
          type = types.str;
          # The user services.hozo.agent creates (the binary's own default is root).
          default = "hozo";
          description = "SSH user on the box; `hozo` is the user `services.hozo.agent` creates.";
        };
        sshKeyFile = mkOption {
          type = types.nullOr (types.coercedTo types.path toString types.str);
          default = null;
          example = literalExpression "config.sops.secrets.\"hozo/box-ssh-key\".path";
          description = ''
            Private SSH key for this host: an absolute path outside the Nix store, readable by root
            (for example a sops-nix or agenix secret). Each job unit receives it through systemd's
            `LoadCredential=`, so the service user never reads the original file, and the config that
            unit reads names the copy under {file}`/run/credentials/hozo-<job>.service/ssh-key-${name}`.
          '';
        };
        knownHostsFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = ''
            known_hosts file with the box's host key. Defaults to {file}`/etc/ssh/ssh_known_hosts`
            when `hostPublicKey` is set, which this module adds to `programs.ssh.knownHosts`.
          '';
        };
        hostPublicKey = mkOption {
          type = types.nullOr types.singleLineStr;
          default = null;
          example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...";
          description = ''
            The box's SSH host public key (its {file}`/etc/ssh/ssh_host_ed25519_key.pub`). Added to
            `programs.ssh.knownHosts`; host key checking is never turned off.
          '';
        };
        sshOptions = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "Ciphers=aes128-gcm@openssh.com" ];
          description = "Extra `ssh -o Key=value` options, from hozo's allow-list (ciphers, algorithms, timeouts, keep-alives, …); options that run commands, load code or move host-key trust are rejected by `hozo config check`, and a jump host is `via`, not ProxyJump.";
        };
        wake = mkOption {
          type = types.nullOr (types.submodule wakeModule);
          default = null;
          example = literalExpression ''
            {
              method = "wol";
              mac = "52:54:00:7a:0b:01";
              address = "192.168.1.255";
            }
          '';
          description = "How to wake the box; `null` assumes it is always on.";
        };
        readyTimeout = mkOption {
          type = durationType;
          default = 300;
          example = "10m";
          description = "How long to wait for the box to answer SSH after waking it (seconds or a duration).";
        };
        shutdown = mkOption {
          type = types.enum [
            "agent"
            "ssh"
            "none"
          ];
          # The binary's own default is "none"; with services.hozo.agent on the box, "agent" is the setup to use.
          default = "agent";
          description = ''
            How to put the box back to sleep after a job with `shutdownAfter`: ask its agent
            (`services.hozo.agent`, which powers off only when no other controller holds a lease),
            run `shutdownCommand` over SSH, or leave it on. Only a box this run woke is put back to
            sleep, unless `shutdownIfAwake`.
          '';
        };
        agent = mkOption {
          type = types.nullOr types.bool;
          default = null;
          description = ''
            Whether the box runs `hozo-agent` as the forced command of this key (leases, `prepare`,
            receives through the agent). `null` leaves it to the binary: true when
            `shutdown = "agent"`.
          '';
        };
        shutdownCommand = mkOption {
          type = types.listOf types.str;
          default = [
            "systemctl"
            "poweroff"
          ];
          description = "Argument vector run on the box over SSH for `shutdown = \"ssh\"`.";
        };
        shutdownIfAwake = mkOption {
          type = types.bool;
          default = false;
          description = "Also put the box to sleep after a run that found it already awake.";
        };
        pools = mkOption {
          type = types.nullOr (types.listOf types.str);
          default = null;
          example = [ "backup" ];
          description = "Pools that must be imported and healthy before a run; `null`: the pools of the job's targets.";
        };
        bandwidthLimit = bandwidthOption "the smaller of the host's and the job's applies.";
        scrubWarnAfter = mkOption {
          type = types.nullOr durationType;
          default = null;
          example = "40d";
          description = ''
            A target pool whose last scrub (as hozo-agent reports it) is older than this is a warning in
            the run's report and `hozo_pool_scrub_overdue` in the metrics; `null`: the binary's default,
            35 days.
          '';
        };
        leaseTtl = mkOption {
          type = durationType;
          default = "6h";
          description = ''
            The lease a run takes on the agent expires after this (seconds or a duration), so a
            controller that crashed cannot keep the box up; at most the agent's `maxLeaseSeconds`.
          '';
        };
        trust = mkOption {
          type = types.enum [
            "untrusted"
            "trusted"
          ];
          default = "untrusted";
          description = ''
            `untrusted`: the box never sees plaintext. Encrypted datasets are sent raw (`zfs send -w`,
            the box has no key), unencrypted ones are refused unless their dataset entry sets
            `allowPlaintext`. `trusted`: a box you would hand your data in the clear (a second machine at
            home); `hozo config check` warns about every job to it.
          '';
        };
      };
    };

  notifyModule = {
    options = {
      type = mkOption {
        type = types.enum [
          "ntfy"
          "pushover"
          "email"
          "webhook"
        ];
        description = "The channel's kind; each uses only some of the fields below.";
      };
      on = mkOption {
        type = types.enum [
          "failure"
          "success"
          "always"
        ];
        default = "failure";
        description = "Which runs to report.";
      };
      timeout = mkOption {
        type = durationType;
        default = 15;
        description = "Give up on the notification after this long (seconds or a duration).";
      };
      url = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://ntfy.sh/my-backups-3f9c";
        description = "ntfy: the topic's URL; webhook: where the run report is POSTed as JSON.";
      };
      tokenFile = mkOption {
        type = types.nullOr (types.coercedTo types.path toString types.str);
        default = null;
        example = literalExpression "config.sops.secrets.\"hozo/ntfy-token\".path";
        description = ''
          ntfy, webhook (optional) and pushover (required): a file holding the token, outside the
          Nix store. Each job unit receives it with `LoadCredential=`, like the SSH keys.
        '';
      };
      userFile = mkOption {
        type = types.nullOr (types.coercedTo types.path toString types.str);
        default = null;
        description = "pushover: a file holding the user key, outside the Nix store (passed like `tokenFile`).";
      };
      apiUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "pushover: the API endpoint; `null`: the binary's default (api.pushover.net).";
      };
      to = mkOption {
        type = types.nullOr (types.either types.str (types.listOf types.str));
        default = null;
        example = [ "admin@example.org" ];
        description = "email: recipient address(es).";
      };
      from = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "email: sender address.";
      };
      sendmail = mkOption {
        type = types.str;
        default = "/run/wrappers/bin/sendmail";
        description = ''
          email: a sendmail-compatible program. The job units run with `NoNewPrivileges=`, so it
          must work without setuid/setgid (msmtp via `programs.msmtp.setSendmail` does; Postfix's
          setgid `postdrop` does not).
        '';
      };
    };
  };

  policyModule = {
    options = {
      hourly = mkOption {
        type = types.ints.unsigned;
        default = 24;
        description = "Hourly snapshots sanoid keeps.";
      };
      daily = mkOption {
        type = types.ints.unsigned;
        default = 14;
        description = "Daily snapshots sanoid keeps.";
      };
      monthly = mkOption {
        type = types.ints.unsigned;
        default = 6;
        description = "Monthly snapshots sanoid keeps.";
      };
      yearly = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "Yearly snapshots sanoid keeps.";
      };
    };
  };

  jobModule =
    { name, ... }:
    {
      options = {
        host = mkOption {
          type = types.str;
          example = "box";
          description = "A name from `services.hozo.controller.hosts`, or `\"local\"` for a target on this machine.";
        };
        datasets = mkOption {
          type = types.listOf (types.submodule datasetModule);
          default = [ ];
          description = "Datasets this job replicates.";
        };
        snapshots = {
          send = mkOption {
            type = types.enum [
              "all"
              "latest"
            ];
            default = "all";
            description = ''
              Which source snapshots to send: every snapshot since the common base, or only the
              newest. Rendered as the job's `snapshots` key in the binary's config.
            '';
          };
          policy = mkOption {
            type = types.nullOr (types.submodule policyModule);
            default = null;
            example = literalExpression "{ hourly = 24; daily = 14; monthly = 6; }";
            description = ''
              Snapshot schedule for the job's sources. When set, the module enables
              `services.sanoid` with a template `hozo-${name}` and dataset entries for each source
              (all with `mkDefault`, so sanoid settings of your own win). `null`: take snapshots
              yourself (or use `own`).
            '';
          };
          own = {
            enable = mkOption {
              type = types.bool;
              default = false;
              description = ''
                hozo takes the snapshots itself: one atomic snapshot of all the job's sources at the
                start of each run (`<prefix>_YYYYMMDDTHHMMSSZ`, UTC), and prunes its own beyond
                `keep` (never a held base, never a snapshot it did not name). Use it without sanoid,
                or beside it when the backup needs its own point in time (hooks); with `policy`
                alone, sanoid's snapshots are what is sent. Needs `snapshot` and (to prune) `destroy`
                on the sources: the delegation adds them for this job's sources.
              '';
            };
            prefix = mkOption {
              type = types.nullOr (types.strMatching "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
              default = null;
              description = "Name prefix of the own snapshots; `null`: `hozo_<job>`.";
            };
            keep = mkOption {
              type = types.ints.between 1 100000;
              default = 24;
              description = "How many of the own snapshots stay on the source.";
            };
          };
        };
        hooks = hookOptions;
        window.maxAwake = mkOption {
          type = types.nullOr durationType;
          default = null;
          example = "2h";
          description = ''
            The wake window: the box stays awake at most this long per run. Datasets go most lagging
            first, then smallest; one starts only if its estimated stream (`zfs send -nP`) fits the time
            left at the measured rate; the rest is deferred to the next wake and reported as backlog
            (`hozo_job_backlog_bytes`). A transfer still running at the end is cut; OpenZFS resumes it
            next time. `null`: no window.
          '';
        };
        verify = {
          schedule = mkOption {
            type = types.nullOr types.str;
            default = null;
            example = "monthly";
            description = ''
              When to run `hozo verify` for this job (a systemd calendar expression): the unit
              `hozo-verify-<job>` and its timer. `null`: no timer (run `hozo verify` by hand).
            '';
          };
          restoreTest = mkOption {
            type = types.bool;
            default = true;
            description = ''
              `--restore-test`: receive the newest backup of each dataset back into a scratch dataset,
              compare every file with the source snapshot, destroy the scratch. It mounts datasets,
              so the verify unit then runs as root with `CAP_SYS_ADMIN` (mount) and
              `CAP_DAC_READ_SEARCH` (read every file), in its own mount namespace.
            '';
          };
          datasets = mkOption {
            type = types.nullOr types.ints.positive;
            default = null;
            description = "Restore-test a random sample of this many datasets (`--datasets`); `null`: all.";
          };
          files = mkOption {
            type = types.nullOr types.ints.positive;
            default = null;
            description = "Hash a random sample of this many files per dataset (`--files`); `null`: all (every path is compared by type, size and mode either way).";
          };
        };
        rollback = mkOption {
          type = types.bool;
          default = false;
          description = "Roll the target back to the common snapshot when it was modified.";
        };
        schedule = mkOption {
          type = types.str;
          default = "daily";
          example = "*-*-* 02:30:00";
          description = "When to run, as a systemd calendar expression ({manpage}`systemd.time(7)`).";
        };
        randomizedDelaySec = mkOption {
          type = types.str;
          default = "30min";
          description = "`RandomizedDelaySec=` of the job's timer.";
        };
        persistent = mkOption {
          type = types.bool;
          default = true;
          description = "Run a missed schedule at next boot (`Persistent=`).";
        };
        timeout = mkOption {
          type = types.str;
          default = "12h";
          description = "`TimeoutStartSec=` of the job's service: longest a run may take.";
        };
        restartDelay = mkOption {
          type = durationType;
          default = "15m";
          description = "Wait this long before running a failed job again (`hozo run --attempt-delay`; seconds or a duration like `\"15m\"`).";
        };
        restartAttempts = mkOption {
          type = types.ints.between 0 99;
          default = 3;
          description = ''
            How often a failed run (exit 1: a dataset failed, 3: the box unreachable) is run again
            within the same start of the unit (`hozo run --attempts`); not for exit 2 (config) or 4
            (already running). The retries live in hozo, not in systemd's `Restart=`, so starting the
            unit by hand never uses up a budget that the next timer run would need.
          '';
        };
        shutdownAfter = mkOption {
          type = types.bool;
          default = true;
          description = "Put the host back to sleep after the run.";
        };
        retries = mkOption {
          type = types.ints.between 0 100;
          default = 3;
          description = "Retries of a failed dataset within one run.";
        };
        retryDelay = mkOption {
          type = durationType;
          default = 60;
          description = "Pause between those retries (seconds or a duration).";
        };
        buffer = mkOption {
          type = types.enum [
            "auto"
            "mbuffer"
            "none"
          ];
          default = "auto";
          description = ''
            `auto`: mbuffer in front of the receiving `zfs receive` when the stream crosses the
            network and that host has mbuffer (zfs receive takes data in bursts; the buffer keeps
            the sender and SSH going meanwhile). `mbuffer`: on both ends (both must have it).
            `none`: no buffer.
          '';
        };
        bufferSize = mkOption {
          type = types.strMatching "[1-9][0-9]{0,4}M|[1-9]G|1[0-6]G";
          default = "128M";
          example = "32M";
          description = ''
            mbuffer's memory on each buffered end, e.g. `"32M"` or `"1G"`. A box running
            hozo-agent uses the agent's own `bufferSize`.
          '';
        };
        compress = mkOption {
          type = types.enum [
            "zstd"
            "none"
          ];
          default = "none";
          description = "Compress the stream in transit with zstd.";
        };
        bandwidthLimit = bandwidthOption "the smaller of this and the host's `bandwidthLimit` applies.";
        service = mkOption {
          # attrsOf anything, not attrs: several definitions (a module of yours and one of a host's) merge
          # recursively instead of the last one replacing the others.
          type = types.attrsOf types.anything;
          default = { };
          example = literalExpression "{ serviceConfig.Nice = 10; }";
          description = "Extra systemd service settings for this job's unit, merged last.";
        };
      };
    };

in
{
  inherit
    durationType
    bandwidthType
    bandwidthOption
    hookModule
    hookOption
    hookOptions
    renderHooks
    datasetModule
    wakeModule
    hostModule
    notifyModule
    policyModule
    jobModule
    ;
}

declare module 'wake_on_lan' {
  export interface WakeOptions {
    address?: string;
    port?: number;
    num_packets?: number;
    interval?: number;
  }
  export function createMagicPacket(mac: string): Buffer;
  export function wake(mac: string, opts: WakeOptions, callback: (error?: Error) => void): void;
}

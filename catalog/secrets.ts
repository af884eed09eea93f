import crypto from 'node:crypto';
import { persistentSecret, randomHex } from '../platform/data-dir';

/**
 * Credentials at rest: AES-256-GCM with a random 96-bit nonce per value.
 * Envelope: "v1:<nonce b64>:<tag b64>:<ciphertext b64>" so the format can evolve.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(keyHex: string) {
    if (!/^[0-9a-fA-F]{64}$/.test(keyHex)) {
      throw new Error('TRIBUTARY_SECRET_KEY must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`');
    }
    this.key = Buffer.from(keyHex, 'hex');
  }

  /** Key from TRIBUTARY_SECRET_KEY, else generated once into the data dir with mode 0600. */
  static fromConfig(opts: { secretKey?: string; dataDir: string }): SecretBox {
    return new SecretBox(opts.secretKey ?? persistentSecret(opts.dataDir, 'secret-key', randomHex(32)));
  }

  seal(value: unknown): string {
    const nonce = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, nonce);
    const ct = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return ['v1', nonce.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
  }

  open<T = unknown>(envelope: string): T {
    const [version, nonce, tag, ct] = envelope.split(':');
    if (version !== 'v1' || !nonce || !tag || ct === undefined) throw new Error('Unrecognised secret envelope');
    const decipher = crypto.createDecipheriv('aes-256-gcm', this.key, Buffer.from(nonce, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    try {
      const pt = Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]);
      return JSON.parse(pt.toString('utf8')) as T;
    } catch {
      throw new Error('Cannot decrypt stored credentials: TRIBUTARY_SECRET_KEY differs from the key they were saved with');
    }
  }
}

export const MASK = '********';

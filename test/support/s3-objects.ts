import crypto from 'node:crypto';

/**
 * Uploads and deletes objects through the S3 API itself (AWS Signature Version 4, path-style), as a user's tool
 * would: an object written this way has the ETag the server computes, which a file dropped into versitygw's
 * folder by hand lacks.
 */
export interface S3Target {
  endpoint: string;
  access: string;
  secret: string;
  region?: string;
}

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => crypto.createHmac('sha256', key).update(data).digest();

async function signed(target: S3Target, method: 'PUT' | 'DELETE', bucket: string, key: string, body: Buffer = Buffer.alloc(0)): Promise<Response> {
  const region = target.region ?? 'us-east-1';
  const url = new URL(`${target.endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = sha256(body);
  const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers[n]}\n`).join('');
  const canonical = [method, url.pathname, '', canonicalHeaders, names.join(';'), payloadHash].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${target.secret}`, day), region), 's3'), 'aws4_request');
  const signature = crypto.createHmac('sha256', signingKey).update(toSign).digest('hex');
  const authorization = `AWS4-HMAC-SHA256 Credential=${target.access}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  const { host: _host, ...sent } = headers;
  void _host;
  return fetch(url, { method, headers: { ...sent, authorization }, body: method === 'PUT' ? body : undefined });
}

export async function putObject(target: S3Target, bucket: string, key: string, body: string | Buffer): Promise<void> {
  const res = await signed(target, 'PUT', bucket, key, Buffer.isBuffer(body) ? body : Buffer.from(body));
  if (!res.ok) throw new Error(`PUT ${bucket}/${key}: ${res.status} ${await res.text()}`);
}

export async function deleteObject(target: S3Target, bucket: string, key: string): Promise<void> {
  const res = await signed(target, 'DELETE', bucket, key);
  if (!res.ok && res.status !== 404) throw new Error(`DELETE ${bucket}/${key}: ${res.status} ${await res.text()}`);
}

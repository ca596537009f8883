import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

/** A message as the receiver got it: recipients (lower case), subject, and the body decoded. */
export type Received = { to: string[]; subject: string; body: string };

export type SmtpReceiver = { port: number; close(): Promise<void> };

/** Undo header folding, quoted-printable soft breaks and escapes, so the message reads as it was written. */
function decode(raw: string): { subject: string; body: string } {
  const headerEnd = raw.indexOf("\r\n\r\n");
  const headers = raw.slice(0, headerEnd).replace(/\r\n[ \t]+/g, " ");
  const subject = /^Subject: (.*)$/m.exec(headers)?.[1] ?? "";
  const body = raw
    .slice(headerEnd + 4)
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return { subject, body };
}

/** A real SMTP server (the `smtp-server` package) on 127.0.0.1 that keeps what it receives in `received`. */
export async function startSmtp(received: Received[], port = 0): Promise<SmtpReceiver> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      let raw = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        raw += chunk;
      });
      stream.on("end", () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), ...decode(raw) });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Poll until `probe` yields a value; bounded, so a broken sender fails the test instead of hanging it. */
export async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}

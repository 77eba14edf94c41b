import { z } from 'zod'
import type { RemediationDefinition } from '../types.ts'
import { AbsolutePathSchema, limitThenEscalate, ServiceUnitNameSchema } from './params.ts'

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
/** `host:port`: a DNS name or IPv4 address, or an IPv6 address in brackets; port 1..65535. */
const HOST_PORT = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]{2,45}\\]):([1-9][0-9]{0,4})$`)

export const CertificateRenewParamsSchema = z
  .object({
    certName: z
      .string()
      .max(255)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a certbot certificate name such as example.org')
      .optional()
      .describe('The certbot certificate name (`certbot certificates` lists them), e.g. example.org'),
    certPath: AbsolutePathSchema.optional().describe(
      'Or: the certificate file; the executor finds the certbot certificate that owns it (filled in from the observation when both are left out)',
    ),
    reloadUnit: ServiceUnitNameSchema.optional().describe(
      'Reload this service after renewal so it serves the new certificate, e.g. nginx.service',
    ),
    verifyEndpoint: z
      .string()
      .max(262)
      .regex(HOST_PORT, 'host:port, e.g. example.org:443 or [2001:db8::1]:443')
      .refine((v) => Number(HOST_PORT.exec(v)?.[1]) <= 65_535, 'a port from 1 to 65535')
      .optional()
      .describe('After renewal, connect here (TLS, with SNI) and check that the new certificate is served'),
    acmeServer: z
      .url({ protocol: /^https$/, error: 'an https URL' })
      .max(2048)
      .refine((u) => {
        // The url check above reports a malformed URL; this one only looks at URLs that parse.
        const url = URL.canParse(u) ? new URL(u) : undefined
        return url === undefined || (url.username === '' && url.password === '' && url.hash === '')
      }, 'no credentials or fragment in the URL')
      .optional()
      .describe("The ACME directory URL, when not certbot's configured one (e.g. a staging or internal CA)"),
  })
  .strict()
  .refine((p) => (p.certName === undefined) !== (p.certPath === undefined), {
    message: 'name the certificate with exactly one of certName or certPath',
    path: ['certName'],
  })
export type CertificateRenewParams = z.infer<typeof CertificateRenewParamsSchema>

export const certificateRenewRemediation: RemediationDefinition<typeof CertificateRenewParamsSchema> = {
  id: 'certificate-renew',
  title: 'Renew a certificate',
  description:
    'Renews one certbot certificate (`certbot renew --cert-name`), reloads the service that uses it, and checks that the endpoint serves the new certificate.',
  params: CertificateRenewParamsSchema,
  risk: 'disruptive',
  status: 'available',
  appliesTo: ['certificate'],
  defaultGuards: { limit: limitThenEscalate(2, '1d'), cooldown: '1h' },
  bind: {
    certificate: { param: 'certPath', field: 'source', placeholder: '/etc/letsencrypt/live/example.org/cert.pem' },
  },
  ssmDocument: 'ANSAI-RenewCertificate',
  permissions: [
    'certbot renew --cert-name <certName> (writes /etc/letsencrypt, talks to the ACME server)',
    'certbot certificates (to find the certificate name of <certPath>)',
    'systemctl reload <reloadUnit>',
    'outbound TLS to <verifyEndpoint>',
  ],
  example: `apiVersion: ansai/v1
kind: Policy
metadata: { name: example-org-certificate }
spec:
  observe: certificate
  match: { source: /etc/letsencrypt/live/example.org/fullchain.pem }
  milestones: { field: daysLeft, at: [30, 14, 7, 3, 1] }
  severity:
    warning: { when: "daysLeft <= 30.0" }
    critical: { when: "daysLeft <= 14.0" }
    emergency: { when: "expired" }
  remediate:
    - at: critical
      run: certificate-renew
      params: { certName: example.org, reloadUnit: nginx.service, verifyEndpoint: "example.org:443" }
    - escalate: page
`,
}

// Superseded by webhooks.ts (the table of webhooks); kept until every importer moved.
export { decide, type Webhook } from './webhooks.ts'

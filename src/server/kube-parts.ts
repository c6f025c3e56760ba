// Everything the server needs only when it talks to an API server (no state.directory), in one
// module that runtime.ts imports on demand: @kubernetes/client-node is ~1,000 modules, most of
// `npm start`'s start-up time, and the embedded default (a state directory) never uses it.
export { ApiClusterSource, watchSelection } from '../cluster/api-source.ts'
export { loadKubeConfig } from '../cluster/kube-config.ts'
export { BackupGenerator } from '../controllers/backup.ts'
export { BackupSecretController, secretWrites } from '../controllers/backup-secret.ts'
export { CertRotation } from '../controllers/cert-rotation.ts'
export { kubeWrites } from '../controllers/kube-writes.ts'
export { MissedRestoreGuard } from '../controllers/missed-restore-guard.ts'
export { PrewarmController } from '../controllers/prewarm.ts'
export { leaseElector } from './lease-elector.ts'

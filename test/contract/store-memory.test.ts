import { InMemoryStateStore } from '../../shared/adapters/store/memory.ts'
import { dedupStoreContract } from '../unit/notify/dedup-contract.ts'
import { describeStateStoreContract } from './store-contract.ts'

describeStateStoreContract('in memory', () => new InMemoryStateStore())
dedupStoreContract('InMemoryStateStore', () => new InMemoryStateStore())

import { MemoryFleetStore } from '../../shared/adapters/fleet/memory-fleet-store.ts'
import { dedupStoreContract } from '../unit/notify/dedup-contract.ts'
import { describeFleetStoreContract } from './fleet-store-contract.ts'
import { describeStateStoreContract } from './store-contract.ts'

// The fleet's in-memory twin is a whole StateStore too: both suites run against it.
describeFleetStoreContract('in memory', () => new MemoryFleetStore())
describeStateStoreContract('MemoryFleetStore', () => new MemoryFleetStore())
dedupStoreContract('MemoryFleetStore', () => new MemoryFleetStore())

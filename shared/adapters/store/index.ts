export * from './memory.ts'
export * from './time-saved.ts'

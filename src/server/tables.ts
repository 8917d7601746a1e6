/**
 * The command tables every node serves, whatever its role: data commands
 * (commands.ts, string_commands.ts, bit_commands.ts, keyspace_extras.ts) and the node's own
 * (admin_commands.ts). The composition root adds its role's commands.
 */
import { ADMIN_COMMANDS } from './admin_commands.js'
import { BIT_COMMANDS } from './bit_commands.js'
import { COMMANDS, type CommandSpec } from './commands.js'
import { KEYSPACE_EXTRAS } from './keyspace_extras.js'
import { STRING_COMMANDS } from './string_commands.js'
import { EXPIRE_COMMANDS } from './expire_commands.js'

export const SHARED_COMMANDS: ReadonlyArray<readonly CommandSpec[]> = [COMMANDS, STRING_COMMANDS, EXPIRE_COMMANDS, BIT_COMMANDS, KEYSPACE_EXTRAS, ADMIN_COMMANDS]

import type { Socket } from 'node:net'

/** What a socket's events are handed to (RpcConnection). */
export interface SocketOwner {
  onData(chunk: Uint8Array): void
  peerEnded(): void
  drained(): void
  close(reason: string): void
  socketClosed(): void
}

/**
 * Each socket's owner, so that one set of listeners serves every socket: per connection they
 * would be five closures and their context, what ~10,000 idle peers multiply.
 */
const owners = new WeakMap<Socket, SocketOwner>()

function onData(this: Socket, chunk: Uint8Array): void {
  owners.get(this)?.onData(chunk)
}
function onEnd(this: Socket): void {
  owners.get(this)?.peerEnded()
}
function onDrain(this: Socket): void {
  owners.get(this)?.drained()
}
function onError(this: Socket): void {
  owners.get(this)?.close('socket error')
}
function onClose(this: Socket): void {
  owners.get(this)?.socketClosed()
}

/** Hands the socket's data, end, drain, error and close events to `owner`. */
export function listenTo(socket: Socket, owner: SocketOwner): void {
  owners.set(socket, owner)
  socket.on('data', onData)
  socket.on('end', onEnd)
  socket.on('drain', onDrain)
  socket.on('error', onError)
  socket.on('close', onClose)
}

/** The socket closed: its events go nowhere any more. */
export function forget(socket: Socket): void {
  owners.delete(socket)
}

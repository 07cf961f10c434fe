/**
 * The transport-neutral message: what kombu calls a Message. Transports carry it; the task
 * protocol (task-message.ts) builds and reads it.
 */
export interface MessageProperties {
  correlation_id?: string;
  reply_to?: string;
  delivery_mode?: number;
  priority?: number;
  expiration?: string;
  [extra: string]: unknown;
}

export interface Message {
  headers: Record<string, unknown>;
  properties: MessageProperties;
  contentType: string;
  contentEncoding: string;
  /** The serialized body (for JSON: UTF-8 bytes of the JSON text). */
  body: Buffer;
}

/** Where a message was published and how it was delivered. */
export interface DeliveryInfo {
  exchange: string;
  routingKey: string;
  redelivered: boolean;
  priority?: number;
}

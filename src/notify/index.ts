// Notifications: config schema, message text, channels, and notifyAll.
export { notifySchema, notifyChannelSchema, type NotifyChannel, type NotifyConfig } from './schema.js';
export { formatMessage, type NotifyMessage, type NotifyReport } from './message.js';
export { notifyAll, wantsNotification, describeChannel } from './notify.js';

// The app's words in English and Chinese (zh-CN). The language comes from
// the browser unless the user picked one, and can be switched at any time.

const WORDS = {
  en: {
    appName: 'natter',
    login: 'Log in',
    register: 'Create account',
    username: 'Username',
    password: 'Password',
    displayName: 'Display name (optional)',
    logout: 'Log out',
    haveAccount: 'Have an account? Log in',
    needAccount: 'New here? Create an account',
    invalid_credentials: 'Wrong username or password.',
    username_taken: 'That username is taken.',
    invalid_username: 'Usernames are 3–32 letters, digits, “_”, “.” or “-”.',
    invalid_password: 'Passwords need at least 8 characters.',
    network_error: 'The server cannot be reached. Try again in a moment.',
    unknownError: 'Something went wrong: {message}',
    session_ended: 'You have been logged out.',
    session_replaced: 'You logged in somewhere else, so this window was logged out.',
    session_expired: 'Your session expired. Please log in again.',
    unauthenticated: 'Please log in.',
    conversations: 'Conversations',
    newRoom: 'New room',
    roomTitle: 'Room title',
    publicRoom: 'Anyone can join',
    create: 'Create',
    publicRooms: 'Public rooms',
    join: 'Join',
    joined: 'Joined',
    noPublicRooms: 'No public rooms yet.',
    noRooms: 'No conversations yet: create a room or join a public one.',
    selectRoom: 'Pick a conversation on the left.',
    members: 'Members',
    online: '{count} online',
    message: 'Message',
    you: 'you',
    send: 'Send',
    composerLabel: 'Message',
    composerHint: 'Write a message… (Enter sends, Shift+Enter for a new line)',
    charsLeft: '{count} characters left',
    loadingOlder: 'Loading older messages…',
    beginning: 'This is the beginning of the conversation.',
    newBelow: 'New messages below ↓',
    connected: 'Connected',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    stopped: 'Offline',
    offline: 'Offline',
    sending: 'Sending…',
    failed: 'Not sent.',
    retry: 'Retry',
    dismiss: 'Dismiss',
    notifications: 'Desktop notifications',
    notificationsOn: 'Notifications on',
    emoji: 'Emoji',
    recent: 'Recent',
    back: 'Back',
    leave: 'Leave',
    today: 'Today',
    yesterday: 'Yesterday',
    unread: '{count} unread',
    joinedEvent: '{name} joined',
    leftEvent: '{name} left',
    createdEvent: '{name} created the room “{title}”',
    directCreated: '{name} started the conversation',
    renamedEvent: '{name} renamed the room to “{title}”',
    language: '中文',
    languageLabel: 'Switch to Chinese',
    newMessageFrom: 'New message from {name}',
    embedSignIn: 'Sign in on the site to chat.',
  },
  'zh-CN': {
    appName: 'natter',
    login: '登录',
    register: '注册',
    username: '用户名',
    password: '密码',
    displayName: '昵称（可选）',
    logout: '退出',
    haveAccount: '已有账号？登录',
    needAccount: '还没有账号？注册',
    invalid_credentials: '用户名或密码错误。',
    username_taken: '该用户名已被使用。',
    invalid_username: '用户名为 3–32 个字母、数字、“_”、“.” 或 “-”。',
    invalid_password: '密码至少需要 8 个字符。',
    network_error: '无法连接服务器，请稍后再试。',
    unknownError: '出错了：{message}',
    session_ended: '你已退出登录。',
    session_replaced: '你在别处登录了，此窗口已退出。',
    session_expired: '登录已过期，请重新登录。',
    unauthenticated: '请登录。',
    conversations: '会话',
    newRoom: '新建群聊',
    roomTitle: '群聊名称',
    publicRoom: '任何人都可加入',
    create: '创建',
    publicRooms: '公开群聊',
    join: '加入',
    joined: '已加入',
    noPublicRooms: '还没有公开群聊。',
    noRooms: '还没有会话：新建群聊或加入一个公开群聊。',
    selectRoom: '请在左侧选择一个会话。',
    members: '成员',
    online: '{count} 人在线',
    message: '私聊',
    you: '我',
    send: '发送',
    composerLabel: '消息',
    composerHint: '输入消息…（Enter 发送，Shift+Enter 换行）',
    charsLeft: '还可输入 {count} 字',
    loadingOlder: '正在加载更早的消息…',
    beginning: '这是会话的开始。',
    newBelow: '下方有新消息 ↓',
    connected: '已连接',
    connecting: '正在连接…',
    reconnecting: '正在重新连接…',
    stopped: '离线',
    offline: '离线',
    sending: '发送中…',
    failed: '发送失败。',
    retry: '重试',
    dismiss: '忽略',
    notifications: '桌面通知',
    notificationsOn: '通知已开启',
    emoji: '表情',
    recent: '最近使用',
    back: '返回',
    leave: '退出群聊',
    today: '今天',
    yesterday: '昨天',
    unread: '{count} 条未读',
    joinedEvent: '{name} 加入了群聊',
    leftEvent: '{name} 退出了群聊',
    createdEvent: '{name} 创建了群聊“{title}”',
    directCreated: '{name} 发起了会话',
    renamedEvent: '{name} 将群聊改名为“{title}”',
    language: 'English',
    languageLabel: '切换到英文',
    newMessageFrom: '{name} 发来新消息',
    embedSignIn: '请先在网站上登录后再聊天。',
  },
};

const STORAGE_KEY = 'natter.lang';

/** The language in use: the user's pick, else the browser's. */
export function language() {
  const picked = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (picked && WORDS[picked]) return picked;
  return (globalThis.navigator?.language || 'en').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

/** Switches between English and Chinese and remembers the pick. */
export function toggleLanguage() {
  const next = language() === 'en' ? 'zh-CN' : 'en';
  globalThis.localStorage?.setItem(STORAGE_KEY, next);
  return next;
}

/** The word for `key` in the current language, with `{name}` filled from `vars`. */
export function t(key, vars = {}) {
  const words = WORDS[language()];
  const text = words[key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

/** Whether `key` has a translation (used to map API error codes to words). */
export function has(key) {
  return key in WORDS.en;
}

"""Page labels in English and Chinese; the catalogue itself carries both names of what it lists."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "portal": ("sharebus department portal", "政务数据共享门户"),
    "catalogue": ("Catalogue", "资源目录"),
    "apply": ("Apply", "共享申请"),
    "inbox": ("Approval inbox", "审批待办"),
    "grants": ("My grants", "我的授权"),
    "data": ("My data", "我的数据"),
    "disputes": ("Disputes and quality", "异议与质量"),
    "assessment": ("Assessment", "考核评估"),
    "bureau": ("Bureau", "数据管理局"),
    "signin": ("Sign in", "登录"),
    "signout": ("Sign out", "退出"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "search": ("Search", "搜索"),
    "department": ("Department", "部门"),
    "share_type": ("Share type", "共享类型"),
    "update_mode": ("Update mode", "更新方式"),
    "open_type": ("Open type", "开放类型"),
    "any": ("any", "全部"),
    "field": ("Field", "字段"),
    "type": ("Type", "类型"),
    "sensitive": ("Sensitive", "敏感"),
    "legal_basis": ("Legal basis", "共享依据"),
    "freshness": ("Freshness", "数据时效"),
    "subscribers": ("Subscribers", "订阅方"),
    "consumer": ("Receiving system", "使用系统"),
    "data_class": ("Data class", "数据资源"),
    "fields": ("Fields", "字段"),
    "masked": ("Masked", "脱敏"),
    "purpose": ("Purpose", "用途"),
    "scenario": ("Usage scenario", "应用场景"),
    "valid_days": ("Valid for (days)", "有效期 (天)"),
    "preview": ("Preview masking", "预览脱敏"),
    "submit": ("Submit application", "提交申请"),
    "approve": ("Approve", "批准"),
    "reject": ("Reject", "驳回"),
    "revoke": ("Revoke", "撤销"),
    "reason": ("Reason", "理由"),
    "days_left": ("Working days left", "剩余工作日"),
    "overdue": ("Overdue", "已超期"),
    "requester": ("Requester", "申请人"),
    "state": ("State", "状态"),
    "history": ("History", "历史"),
    "live": ("Live", "生效中"),
    "expiring": ("Expiring soon", "即将到期"),
    "pending": ("Pending", "待审批"),
    "ended": ("Revoked, rejected, expired or lapsed", "已撤销、驳回、过期或失效"),
    "provides": ("What we provide", "本部门提供"),
    "receives": ("What we receive", "本部门接收"),
    "calls": ("Calls", "调用次数"),
    "records": ("Records", "记录数"),
    "consumers": ("Consumers", "使用方"),
    "dead_letters": ("Dead letters", "死信"),
    "live_preview": ("Live preview (granted fields only)", "实时预览 (仅授权字段)"),
    "audit_chain": ("Audit chain", "审计链"),
    "overdue_applications": ("Overdue applications", "超期未审批申请"),
    "overdue_providers": ("Overdue providers", "数据更新超期的提供方"),
    "growing_lag": ("Growing lag", "积压持续增长"),
    "forbidden": ("Not allowed", "无权访问"),
    "at_a_glance": ("All departments at a glance", "各部门概览"),
}


def label(key: str) -> str:
    en, zh = LABELS[key]
    return f"{en} · {zh}"


def label_en(key: str) -> str:
    return LABELS[key][0]


def label_zh(key: str) -> str:
    return LABELS[key][1]
